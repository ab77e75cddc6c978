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
    /// over the budget. Also read as `best`: it has the lowest dev NLL of the variants in the
    /// converged lm study (docs/METHOD.md, 5 seeds), which chooses on dev, never on test.
    /// </summary>
    [EnumAlias("best")]
    Paper,
    /// <summary>Each link warms up (10% of it) and decays on its own, as ReLoRA restarts its schedule.</summary>
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
}

public static class ColaVariants
{
    /// <summary>The trainer and chain settings of <paramref name="variant"/> laid over <paramref name="options"/> and <paramref name="chain"/>.</summary>
    public static (TrainerOptions Options, ChainConfig Chain) Apply(ColaVariant variant, TrainerOptions options, ChainConfig chain) => variant switch
    {
        ColaVariant.Paper => (options, chain),
        ColaVariant.Rewarm => (options with { RewarmEachLink = true, WarmupRatio = Math.Max(options.WarmupRatio, 0.1) }, chain),
        ColaVariant.GradientInit => (options with { GradientInit = true }, chain),
        ColaVariant.AutoKnots => (options, chain with { Auto = chain.Auto ?? new AutoKnots() }),
        _ => throw new ArgumentOutOfRangeException(nameof(variant)),
    };
}
