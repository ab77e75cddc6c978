// What a chain has built: the singular values of the accumulated update of each adapted layer,
// delta W = sum over tied links of (alpha/r) B A, plus the live link's, and its effective rank
// (Roy and Vetterli 2007): exp of the entropy of the singular values normalised to sum 1. A rank-r
// LoRA's delta has at most r non-zero singular values; each knot can add r more (COLA's claim to
// reach a higher rank at rank-r memory), and the effective rank says how evenly they are used.
using static TorchSharp.torch;

namespace ChainLora.Lora;

/// <summary>One layer's accumulated delta W: its singular values (descending) and effective rank.</summary>
public sealed record LayerSpectrum(string Layer, IReadOnlyList<double> SingularValues, double EffectiveRank);

public static class DeltaSpectrum
{
    /// <summary>exp(-sum p_i ln p_i) with p_i = s_i / sum s; 0 for an all-zero delta.</summary>
    public static double EffectiveRank(IReadOnlyList<double> singularValues)
    {
        var total = singularValues.Sum();
        if (!(total > 0)) return 0;
        var entropy = singularValues.Where(s => s > 0).Sum(s => -(s / total) * Math.Log(s / total));
        return Math.Exp(entropy);
    }

    /// <summary>Every adapted layer's accumulated delta W (<see cref="LoraAdapters.TotalDeltas"/>), by layer path.</summary>
    public static List<LayerSpectrum> Of(LoraAdapters adapters)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return adapters.TotalDeltas().OrderBy(d => d.Key, StringComparer.Ordinal).Select(d =>
        {
            var values = linalg.svdvals(d.Value.to(ScalarType.Float64)).data<double>().ToArray();
            return new LayerSpectrum(d.Key, values, EffectiveRank(values));
        }).ToList();
    }
}
