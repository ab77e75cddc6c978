// ReLoRA's partial optimizer reset (Lialin et al. 2023, arXiv 2307.05695, Sec. 3): at a merge the
// optimizer is kept, and each of its state tensors loses its smallest entries by magnitude, so the
// new link starts with the strongest moments of the old one instead of none (COLA: a fresh optimizer)
// or all (no reset). Step counts are kept.
using static TorchSharp.torch;
using Optimizer = TorchSharp.torch.optim.Optimizer;

namespace ChainLora.Training;

public static class OptimizerPruning
{
    /// <summary>
    /// Sets the <paramref name="fraction"/> of entries with the smallest magnitude to 0 in every state
    /// tensor of <paramref name="optimizer"/> (AdamW's two moments, SGD's momentum, AdaGrad's sums), each
    /// tensor on its own; ties at the threshold are kept. Returns the entries kept and the entries in all.
    /// </summary>
    public static (long Kept, long Total) Prune(Optimizer optimizer, double fraction)
    {
        if (!(fraction is >= 0 and < 1)) throw new ArgumentException($"prune fraction {fraction}: must be in [0, 1)");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long kept = 0, total = 0;
        foreach (var moment in Checkpoint.Moments(optimizer))
        {
            var n = moment.numel();
            total += n;
            if (n == 0) continue;
            var keep = (long)Math.Ceiling((1 - fraction) * n);
            var magnitude = moment.abs();
            var threshold = magnitude.flatten().topk((int)keep).values.min();
            var mask = magnitude.ge(threshold);
            moment.mul_(mask);
            kept += mask.sum().item<long>();
        }
        return (kept, total);
    }
}
