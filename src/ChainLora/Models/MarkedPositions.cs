using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>Positions whose target is not -100: the ones a loss or a score is computed at.</summary>
public static class MarkedPositions
{
    public const long Ignore = -100;

    /// <summary>
    /// The hidden states (M, D) at the marked positions of <paramref name="hidden"/> (B, T, D), their
    /// targets (M) and flat indices (M) into B x T. Gathered by index_select, whose backward is an
    /// index_add: boolean-mask indexing back-propagates through a far slower index_put. When every
    /// position is marked (plain LM windows), a reshape.
    /// </summary>
    public static (Tensor Rows, Tensor Targets, Tensor Index) Gather(Tensor hidden, Tensor targets)
    {
        var flat = hidden.reshape(-1, hidden.shape[^1]);                   // (B T, D)
        var flatTargets = targets.reshape(-1);
        var index = flatTargets.ne(Ignore).nonzero().squeeze(1);
        if (index.shape[0] == 0) throw new InvalidOperationException("a batch with no target tokens");
        return index.shape[0] == flatTargets.shape[0]
            ? (flat, flatTargets, index)
            : (flat.index_select(0, index), flatTargets.index_select(0, index), index);
    }
}
