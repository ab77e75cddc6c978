// Where the knots sit in the training budget and what each link looks like (paper, Sec. 3.2 and
// Sec. 5: chain length, knot placement over epochs, rank step-down).
using ChainLora.IO;
using ChainLora.Lora;

namespace ChainLora.Chain;

/// <summary>How alpha follows a rank change between links.</summary>
public enum AlphaPolicy
{
    /// <summary>alpha stays; the scale alpha/r grows when the rank steps down (PEFT's behaviour for a new adapter).</summary>
    KeepAlpha,
    /// <summary>alpha moves with the rank so the scale alpha/r stays that of the first link.</summary>
    KeepScaling,
}

public sealed record ChainConfig
{
    /// <summary>
    /// Number of links M; 1 is plain LoRA. Null (the default): the training method's own length, the
    /// paper's 3 for COLA and 1 otherwise (<c>TrainerOptions.ResolveChain</c>, applied by the trainer
    /// and the train recipe), so a library caller asking for COLA gets a chain.
    /// </summary>
    [RecordedAs("chain_length")]
    public int? Length { get; init; }

    /// <summary>The number of links of a resolved chain (<see cref="Length"/> given).</summary>
    public int Links => Length ?? throw new InvalidOperationException("chain length not resolved: give Length, or let the trainer resolve it for its method");
    /// <summary>Rank of each link; shorter than M repeats its last entry ("8,4" over 3 links = 8,4,4). Null: the LoRA rank.</summary>
    public IReadOnlyList<int>? Ranks { get; init; }
    /// <summary>M-1 knots as fractions of the budget in (0, 1), increasing. Null: split by epochs.</summary>
    [RecordedWhenSet]
    public IReadOnlyList<double>? KnotFractions { get; init; }
    /// <summary>M-1 knots as optimizer steps, increasing. Takes precedence over fractions.</summary>
    [RecordedWhenSet]
    public IReadOnlyList<int>? KnotSteps { get; init; }
    [RecordedWhenSet]
    public AlphaPolicy AlphaPolicy { get; init; } = AlphaPolicy.KeepAlpha;
    /// <summary>
    /// Knots placed during training where the loss stops improving (<see cref="AutoKnots"/>), at most
    /// <see cref="Length"/> links; null: the knots are fixed in advance.
    /// </summary>
    public AutoKnots? Auto { get; init; }

    public ChainConfig Validate()
    {
        if (Length is < 1) throw new ArgumentException($"chain length {Length}: must be at least 1");
        if (Length is null) return this;   // checked again once resolved for a method
        if (Auto is not null && (KnotFractions is not null || KnotSteps is not null))
            throw new ArgumentException("automatic knots: give no knot fractions or knot steps");
        Auto?.Validate();
        if (Ranks is { } r)
        {
            if (r.Count == 0 || r.Count > Length) throw new ArgumentException($"ranks [{string.Join(",", r)}]: give 1 to {Length} ranks for a chain of {Length}");
            if (r.Any(x => x < 1)) throw new ArgumentException($"ranks [{string.Join(",", r)}]: every rank must be at least 1");
        }
        if (KnotFractions is { } f)
        {
            if (f.Count != Length - 1) throw new ArgumentException($"knot fractions: {f.Count} given, a chain of {Length} needs {Length - 1}");
            for (var i = 0; i < f.Count; i++)
                if (!(f[i] > 0 && f[i] < 1) || (i > 0 && f[i] <= f[i - 1]))
                    throw new ArgumentException($"knot fraction {f[i]}: fractions must increase strictly inside (0, 1)");
        }
        if (KnotSteps is { } s && s.Count != Length - 1)
            throw new ArgumentException($"knot steps: {s.Count} given, a chain of {Length} needs {Length - 1}");
        return this;
    }

    public int RankOf(int link, int defaultRank) =>
        Ranks is { Count: > 0 } r ? r[Math.Min(link, r.Count - 1)] : defaultRank;
}

/// <summary>
/// One link: optimizer steps [StartStep, EndStep) at a rank and alpha. <paramref name="Reason"/>
/// says why the knot before it sits where it does (null for the first link).
/// </summary>
public sealed record Link(int Index, int StartStep, int EndStep, int Rank, double Alpha, string? Reason = null)
{
    public int Steps => EndStep - StartStep;
}

public sealed class ChainSchedule
{
    readonly ChainConfig chain;
    readonly LoraConfig lora;

    public IReadOnlyList<Link> Links { get; }
    public int TotalSteps { get; }
    /// <summary>The automatic knots' settings, or null when the knots are fixed here.</summary>
    public AutoKnots? Auto => chain.Auto;
    /// <summary>Whether knots are placed during training (<see cref="CutAt"/>) rather than fixed here.</summary>
    public bool IsAutomatic => chain.Auto is not null;
    /// <summary>The most links this chain may have.</summary>
    public int MaxLinks => chain.Links;

    ChainSchedule(ChainConfig chain, LoraConfig lora, IReadOnlyList<Link> links, int totalSteps) =>
        (this.chain, this.lora, Links, TotalSteps) = (chain, lora, links, totalSteps);

    /// <summary>
    /// Lays out <paramref name="chain"/> over <paramref name="epochs"/> epochs of
    /// <paramref name="stepsPerEpoch"/> optimizer steps. By default whole epochs are split as
    /// evenly as possible with the longer links first (M=2 over 5 epochs: 1-3, 4-5); when M
    /// exceeds the epochs, the steps are split that way instead.
    /// </summary>
    public static ChainSchedule Create(ChainConfig chain, LoraConfig lora, int stepsPerEpoch, int epochs)
    {
        chain.Validate();
        lora.Validate();
        if (stepsPerEpoch < 1) throw new ArgumentException($"steps per epoch {stepsPerEpoch}: must be at least 1 (is the training set empty?)");
        if (epochs < 1) throw new ArgumentException($"epochs {epochs}: must be at least 1");
        var total = stepsPerEpoch * epochs;
        var m = chain.Links;
        if (chain.Auto is not null) return OneLink(chain, lora, total);
        if (m > total)
            throw new ArgumentException(
                $"chain length {m} (--chain-length): the run takes {total} optimizer steps and each link needs at least one; use at most {total} links or more data or epochs");
        List<int> bounds;
        if (chain.KnotSteps is { } steps) bounds = [.. steps];
        else if (chain.KnotFractions is { } f) bounds = f.Select(x => (int)Math.Round(x * total)).ToList();
        else if (m <= epochs) bounds = Cumulative(Split(epochs, m)).Select(e => e * stepsPerEpoch).ToList();
        else bounds = Cumulative(Split(total, m));
        bounds = [0, .. bounds, total];
        for (var i = 1; i < bounds.Count; i++)
            if (bounds[i] <= bounds[i - 1])
                throw new ArgumentException(
                    $"chain of {m} links over {total} steps: link {i} would be empty (from step {bounds[i - 1]} to step {bounds[i]})");

        var reason = chain.KnotSteps is not null ? "fixed: knot steps" : chain.KnotFractions is not null ? "fixed: knot fractions"
            : m <= epochs ? "fixed: whole epochs split evenly" : "fixed: steps split evenly";
        var links = Enumerable.Range(0, m).Select(i => MakeLink(chain, lora, i, bounds[i], bounds[i + 1], i == 0 ? null : reason)).ToList();
        return new ChainSchedule(chain, lora, links, total);
    }

    /// <summary>An automatic chain before its first knot: one link over the whole budget.</summary>
    static ChainSchedule OneLink(ChainConfig chain, LoraConfig lora, int total) =>
        new(chain, lora, [MakeLink(chain, lora, 0, 0, total, null)], total);

    static Link MakeLink(ChainConfig chain, LoraConfig lora, int index, int start, int end, string? reason)
    {
        var rank = chain.RankOf(index, lora.Rank);
        var firstScaling = lora.ScalingFor(chain.RankOf(0, lora.Rank), lora.Alpha);
        var alpha = chain.AlphaPolicy == AlphaPolicy.KeepAlpha ? lora.Alpha : firstScaling / lora.ScalingFor(rank, 1.0);
        return new Link(index, start, end, rank, alpha, reason);
    }

    /// <summary>
    /// An automatic chain with its last link ended at <paramref name="step"/> and a new link from there
    /// to the end of the budget, <paramref name="reason"/> recording why.
    /// </summary>
    public ChainSchedule CutAt(int step, string reason)
    {
        if (!IsAutomatic) throw new InvalidOperationException("only an automatic chain is cut during training");
        var last = Links[^1];
        if (step <= last.StartStep || step >= TotalSteps)
            throw new ArgumentException($"knot at step {step}: must fall inside the last link ({last.StartStep}, {TotalSteps})");
        if (Links.Count >= MaxLinks) throw new InvalidOperationException($"the chain already has its {MaxLinks} links");
        return new ChainSchedule(chain, lora, [.. Links.SkipLast(1), last with { EndStep = step }, MakeLink(chain, lora, Links.Count, step, TotalSteps, reason)],
            TotalSteps);
    }

    /// <summary>The chain as <see cref="Create"/> laid it out, before automatic knots cut it (a fixed chain is never cut).</summary>
    public ChainSchedule Uncut() => IsAutomatic ? OneLink(chain, lora, TotalSteps) : this;

    /// <summary>n split into m parts as evenly as possible, the larger parts first.</summary>
    static List<int> Split(int n, int m) => Enumerable.Range(0, m).Select(i => n / m + (i < n % m ? 1 : 0)).ToList();

    /// <summary>Running sums without the final total: the knot positions.</summary>
    static List<int> Cumulative(List<int> parts)
    {
        var sums = new List<int>();
        var s = 0;
        foreach (var p in parts.SkipLast(1)) sums.Add(s += p);
        return sums;
    }

    public Link LinkAt(int step) => Links.Last(l => l.StartStep <= step);
}
