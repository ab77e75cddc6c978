// Variants of the chain beyond Algorithm 1 as published, each a named bundle of trainer and chain
// settings (`--cola-variant NAME`); docs/METHOD.md records what each was measured to do.
using System.Text.Json.Serialization;
using ChainLora.Chain;
using ChainLora.IO;

namespace ChainLora.Training;

public enum ColaVariant
{
    /// <summary>
    /// Algorithm 1 as published: fixed knots, fresh random A, B = 0, fresh optimizer, one LR decay
    /// over the budget.
    /// </summary>
    Paper,
    /// <summary>
    /// Each link warms up (10% of it) and decays on its own, as ReLoRA restarts its schedule. Also read as
    /// `best`: it has the lowest dev NLL of the variants in the converged lm study at tuned learning rates
    /// (experiments/lm2-converged.json, docs/METHOD.md, 5 seeds), which chooses on dev, never on test.
    /// </summary>
    [EnumAlias("best")]
    Rewarm,
    /// <summary>
    /// Each new link's A spans the top right singular vectors of the full weight gradient at the knot, the
    /// direction Algorithm 2's linear minimisation oracle picks (B = 0, so the function is unchanged).
    /// </summary>
    [JsonStringEnumMemberName("gradient-init")]
    GradientInit,
    /// <summary>Knots where the training loss stops improving (<see cref="AutoKnots"/>), at most the chain length.</summary>
    [JsonStringEnumMemberName("auto-knots")]
    AutoKnots,
    /// <summary>
    /// RAC-LoRA (Malinovsky et al. 2024, arXiv 2410.08305): each link's A is random and frozen, only B trains;
    /// shown to converge where COLA may not.
    /// </summary>
    Rac,
    /// <summary>
    /// ReLoRA (Lialin et al. 2023, arXiv 2307.05695): at each knot the optimizer state is pruned by magnitude
    /// (90% set to 0, the largest 10% kept) rather than reset, and the rate restarts with a short jagged warmup
    /// (2% of the link) back to the budget-wide decay.
    /// </summary>
    Relora,
}

public static class ColaVariants
{
    /// <summary>ReLoRA's partial reset: the share of each optimizer state tensor set to 0 at a knot (the smallest by magnitude).</summary>
    public const double ReloraPruneFraction = 0.9;
    /// <summary>ReLoRA's jagged restart: the share of each new link over which the rate climbs back from near 0.</summary>
    public const double ReloraRestartWarmup = 0.02;

    /// <summary>The trainer and chain settings of <paramref name="variant"/> laid over <paramref name="options"/> and <paramref name="chain"/>.</summary>
    public static (TrainerOptions Options, ChainConfig Chain) Apply(ColaVariant variant, TrainerOptions options, ChainConfig chain) => variant switch
    {
        ColaVariant.Paper => (options, chain),
        ColaVariant.Rewarm => (options with { RewarmEachLink = true, WarmupRatio = Math.Max(options.WarmupRatio, 0.1) }, chain),
        ColaVariant.GradientInit => (options with { GradientInit = true }, chain),
        ColaVariant.AutoKnots => (options, chain with { Auto = chain.Auto ?? new AutoKnots() }),
        ColaVariant.Rac => (options with { FreezeA = true }, chain),
        ColaVariant.Relora => (options with { OptimizerPruneFraction = ReloraPruneFraction, RestartWarmupRatio = ReloraRestartWarmup }, chain),
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };
}
