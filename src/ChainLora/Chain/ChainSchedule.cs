// Where the knots sit in the training budget and what each link looks like (paper, Sec. 3.2 and
// Sec. 5: chain length, knot placement over epochs, rank step-down).
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
    /// <summary>Number of links M; 1 is plain LoRA.</summary>
    public int Length { get; init; } = 1;
    /// <summary>Rank of each link; shorter than M repeats its last entry ("8,4" over 3 links = 8,4,4). Null: the LoRA rank.</summary>
    public IReadOnlyList<int>? Ranks { get; init; }
    /// <summary>M-1 knots as fractions of the budget in (0, 1), increasing. Null: split by epochs.</summary>
    public IReadOnlyList<double>? KnotFractions { get; init; }
    /// <summary>M-1 knots as optimizer steps, increasing. Takes precedence over fractions.</summary>
    public IReadOnlyList<int>? KnotSteps { get; init; }
    public AlphaPolicy AlphaPolicy { get; init; } = AlphaPolicy.KeepAlpha;

    public ChainConfig Validate()
    {
        if (Length < 1) throw new ArgumentException($"chain length {Length}: must be at least 1");
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

/// <summary>One link: optimizer steps [StartStep, EndStep) at a rank and alpha.</summary>
public sealed record Link(int Index, int StartStep, int EndStep, int Rank, double Alpha)
{
    public int Steps => EndStep - StartStep;
}

public sealed class ChainSchedule
{
    public IReadOnlyList<Link> Links { get; }
    public int TotalSteps { get; }

    ChainSchedule(IReadOnlyList<Link> links, int totalSteps) => (Links, TotalSteps) = (links, totalSteps);

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
        var m = chain.Length;
        List<int> bounds;
        if (chain.KnotSteps is { } steps) bounds = [.. steps];
        else if (chain.KnotFractions is { } f) bounds = f.Select(x => (int)Math.Round(x * total)).ToList();
        else if (m <= epochs) bounds = Cumulative(Split(epochs, m)).Select(e => e * stepsPerEpoch).ToList();
        else bounds = Cumulative(Split(total, m));
        bounds = [0, .. bounds, total];
        for (var i = 1; i < bounds.Count; i++)
            if (bounds[i] <= bounds[i - 1])
                throw new ArgumentException(
                    $"chain of {m} links over {total} steps: link {i} would be empty (knots at steps {string.Join(", ", bounds.Skip(1).SkipLast(1))})");

        var firstRank = chain.RankOf(0, lora.Rank);
        var firstScaling = lora.ScalingFor(firstRank, lora.Alpha);
        var links = Enumerable.Range(0, m).Select(i =>
        {
            var rank = chain.RankOf(i, lora.Rank);
            var alpha = chain.AlphaPolicy == AlphaPolicy.KeepAlpha ? lora.Alpha : firstScaling / lora.ScalingFor(rank, 1.0);
            return new Link(i, bounds[i], bounds[i + 1], rank, alpha);
        }).ToList();
        return new ChainSchedule(links, total);
    }

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
