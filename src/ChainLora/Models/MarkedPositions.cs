using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>Positions whose target is not -100: the ones a loss or a score is computed at.</summary>
public static class MarkedPositions
{
    public const long Ignore = -100;

    /// <summary>
    /// The marked positions of <paramref name="targets"/> (B, T): their flat indices (M) into B x T,
    /// their targets (M), and whether every position is marked. Counting them waits for the device,
    /// so a training step selects before its forward pass, while the device has nothing queued.
    /// </summary>
    public static Selection Select(Tensor targets)
    {
        var flatTargets = targets.reshape(-1);
        var index = flatTargets.ne(Ignore).nonzero().squeeze(1);
        if (index.shape[0] == 0) throw new InvalidOperationException("a batch with no target tokens");
        var all = index.shape[0] == flatTargets.shape[0];
        return new Selection(index, all ? flatTargets : flatTargets.index_select(0, index), all);
    }

    /// <summary>The hidden states (M, D) at the marked positions of <paramref name="hidden"/> (B, T, D), their targets (M) and flat indices (M).</summary>
    public static (Tensor Rows, Tensor Targets, Tensor Index) Gather(Tensor hidden, Tensor targets)
    {
        var selection = Select(targets);
        return (selection.Rows(hidden), selection.Targets, selection.Index);
    }

    /// <summary>Marked positions: flat indices (M), their targets (M), and whether they are all positions.</summary>
    public sealed record Selection(Tensor Index, Tensor Targets, bool All)
    {
        /// <summary>
        /// Rows (M, D) of <paramref name="hidden"/> (B, T, D). Gathered by index_select, whose backward is
        /// an index_add: boolean-mask indexing back-propagates through a far slower index_put. When every
        /// position is marked (plain LM windows), a reshape.
        /// </summary>
        public Tensor Rows(Tensor hidden)
        {
            var flat = hidden.reshape(-1, hidden.shape[^1]);                   // (B T, D)
            return All ? flat : flat.index_select(0, Index);
        }
    }
}
