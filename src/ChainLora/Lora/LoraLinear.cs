// One LoRA link on a frozen Linear (PEFT's lora.Linear, torchtune's LoRALinear), extended with
// COLA's operations (paper, Algorithm 1, by line):
//   forward      x -> W0 x + b + (alpha/r) B A dropout(x) (line 9)
//   TieKnot()    W0 <- W0 + (alpha/r) B A, permanently (computed in fp32, rounded once), B <- 0 (line 6)
//   ExtendChain  A <- fresh init at rank r', B <- 0 (the function is unchanged) (line 7)
// A is (r, in) and B is (out, r), fp32 whatever the frozen weight's dtype.
using System.Runtime.CompilerServices;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Linear = ChainLora.Models.Linear;

namespace ChainLora.Lora;

/// <summary>
/// One link's factors: A (r, in), B (out, r) and its scaling alpha / r (or alpha / sqrt r). A link
/// tied into the frozen weight is kept this way (on the CPU) for export and analysis, and a PEFT
/// adapter's modules are read into it.
/// </summary>
public sealed record LoraFactors(Tensor A, Tensor B, double Scaling)
{
    public int Rank => (int)A.shape[0];
    /// <summary>scaling * B A, (out, in) fp32.</summary>
    public Tensor Delta() => WeightMerge.Delta(A, B, Scaling);
}

/// <summary>A knot that would merge a non-finite or absurdly large delta; every weight is left as it was.</summary>
public sealed class KnotRefusedException(string message) : InvalidOperationException(message);

public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    // Parameter names follow PEFT's lora_A / lora_B (their .weight suffix is added on export).
    Parameter lora_A;
    Parameter lora_B;
    // Held through a plain object: TorchSharp registers Module-typed fields as children, and this
    // module is itself a child of the base layer.
    readonly StrongBox<Linear> baseBox;
    readonly LoraInit init;
    readonly double dropout;
    readonly List<LoraFactors> tied = [];

    public int Rank => (int)lora_A.shape[0];
    public double Alpha { get; private set; }
    public double Scaling { get; private set; }
    public Linear Base => baseBox.Value!;
    public Parameter A => lora_A;
    public Parameter B => lora_B;
    /// <summary>Links tied so far, in order.</summary>
    public IReadOnlyList<LoraFactors> TiedLinks => tied;

    readonly Func<int, double, double> scalingFor;

    internal LoraLinear(Linear baseLayer, LoraConfig config) : base(nameof(LoraLinear))
    {
        baseBox = new StrongBox<Linear>(baseLayer);
        init = config.Init;
        dropout = config.Dropout;
        scalingFor = config.ScalingFor;
        var device = Base.Weight.device;
        lora_A = new Parameter(zeros(config.Rank, Base.InFeatures, device: device));
        lora_B = new Parameter(zeros(Base.OutFeatures, config.Rank, device: device));
        register_parameter("lora_A", lora_A);
        register_parameter("lora_B", lora_B);
        Reset(config.Rank, config.Alpha);
    }

    // x (..., in) -> (..., out): scaling * B A dropout(x), in fp32, returned in x's dtype.
    public override Tensor forward(Tensor x)
    {
        var h = x.to(ScalarType.Float32);
        if (dropout > 0) h = nn.functional.dropout(h, dropout, training);
        // Scaled at rank r: (N, r) products instead of (N, out).
        var y = nn.functional.linear(nn.functional.linear(h, lora_A) * Scaling, lora_B);
        return y.to(x.dtype);
    }

    /// <summary>scaling * B A, (out, in) fp32.</summary>
    public Tensor DeltaWeight() => WeightMerge.Delta(lora_A, lora_B, Scaling);

    /// <summary>
    /// Merges this link into the frozen weight permanently and zeroes B, so the layer computes
    /// the same function. The sum is formed in fp32 and rounded once to the weight's dtype.
    /// Refuses (throws, weights untouched) when the delta is not finite.
    /// </summary>
    public void TieKnot()
    {
        using var _ = no_grad();
        if (KnotRefusal() is { } why)
            throw new KnotRefusedException($"refusing to tie a knot on a {Base.OutFeatures}x{Base.InFeatures} layer: {why}");
        WeightMerge.AddInPlace(Base.Weight, lora_A, lora_B, Scaling);
        tied.Add(new LoraFactors(lora_A.detach().cpu().clone().DetachFromDisposeScope(),
            lora_B.detach().cpu().clone().DetachFromDisposeScope(), Scaling));
        lora_B.zero_();
    }

    /// <summary>Whether scaling * B A is finite (<see cref="WeightMerge.IsFinite"/>).</summary>
    public bool DeltaIsFinite() => WeightMerge.IsFinite(lora_A, lora_B, Scaling);

    /// <summary>Why this link must not be tied into the weight (<see cref="WeightMerge.Refusal"/>), or null.</summary>
    public string? KnotRefusal() => WeightMerge.Refusal(Base.Weight, lora_A, lora_B, Scaling);

    /// <summary>
    /// Starts a new link at <paramref name="rank"/> with <paramref name="alpha"/>: A freshly
    /// initialised, B = 0. Call after <see cref="TieKnot"/>; the optimizer must be rebuilt since
    /// the parameters' storage changes.
    /// </summary>
    public void ExtendChain(int rank, double alpha) => Reset(rank, alpha);

    /// <summary>
    /// Overwrites the live link's A (r, in) and B (out, r) with <paramref name="a"/> and <paramref name="b"/>
    /// (any dtype and device; copied, converted to fp32): an imported adapter, or a reference's initial
    /// values. The parameters stay the same tensors, so an optimizer built on them keeps working.
    /// </summary>
    public void LoadFactors(Tensor a, Tensor b)
    {
        if (Misfit(a, b) is { } why) throw new ArgumentException($"LoRA factors: {why}");
        using var _ = no_grad();
        lora_A.copy_(a);
        lora_B.copy_(b);
    }

    /// <summary>Why <paramref name="a"/> and <paramref name="b"/> cannot be this link's factors (their shapes), or null.</summary>
    internal string? Misfit(Tensor a, Tensor b) =>
        a.shape.SequenceEqual(lora_A.shape) && b.shape.SequenceEqual(lora_B.shape) ? null
            : $"A [{string.Join(", ", a.shape)}] and B [{string.Join(", ", b.shape)}] where this rank-{Rank} link of a " +
              $"{Base.OutFeatures}x{Base.InFeatures} layer needs A [{string.Join(", ", lora_A.shape)}] and B [{string.Join(", ", lora_B.shape)}]";

    /// <summary>Replaces the record of tied links (resuming from a checkpoint; the weight already holds them).</summary>
    internal void RestoreTiedLinks(IEnumerable<LoraFactors> links)
    {
        tied.Clear();
        tied.AddRange(links.Select(l => new LoraFactors(l.A.clone().DetachFromDisposeScope(), l.B.clone().DetachFromDisposeScope(), l.Scaling)));
    }

    void Reset(int rank, double alpha)
    {
        if (rank < 1) throw new ArgumentException($"LoRA rank {rank}: must be at least 1");
        using var _ = no_grad();
        var device = lora_A.device;
        // Drawn from the CPU generator whatever the device, so a seed starts the same chain on a GPU as on the CPU.
        using var a = empty(rank, Base.InFeatures, device: CPU);
        if (init == LoraInit.Kaiming) nn.init.kaiming_uniform_(a, a: Math.Sqrt(5));
        else a.normal_(0, 1.0 / rank);
        lora_A.set_(a.to(device));
        lora_B.set_(zeros(Base.OutFeatures, rank, device: device));
        lora_A.grad = null;
        lora_B.grad = null;
        Alpha = alpha;
        Scaling = scalingFor(rank, alpha);
    }
}
