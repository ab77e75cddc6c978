// Analytic training FLOPs, counting only what is computed (a multiply-add = 2 FLOPs):
//   forward   every matmul: 2 in out per token for each Linear (and a tied head), LoRA at its
//             rank 2 r (in + out), attention scores and values 2 * 2 T w per layer (T = context,
//             w = query width; masked entries are still computed by a dense kernel)
//   backward  input gradients of every matmul (the same again, attention twice its forward),
//             weight gradients only for trainable matrices: 2 in out, LoRA A 2 r in and B 2 r out
//             (RAC-LoRA freezes A: no gradient of A is computed, none counted)
//   knots     what a chain computes besides its steps: each knot's merge B A (2 r in out per adapted
//             layer); gradient init's weight gradient on a link's last step (2 in out per token per
//             adapted layer) and its thin SVD of each layer's gradient (14 m n^2 + 8 n^3, m >= n:
//             Golub-Kahan-Reinsch with U_1 and V, Golub and Van Loan, Matrix Computations, Sec. 8.6)
// Elementwise work (norms, activations, softmax, the optimizer, ReLoRA's pruning of its state) is
// left out, as is customary.
using ChainLora.Lora;
using ChainLora.Models;
using Linear = ChainLora.Models.Linear;

namespace ChainLora.Training;

public sealed record FlopCount(double Forward, double BackwardInput, double BackwardWeight)
{
    public double Training => Forward + BackwardInput + BackwardWeight;
}

public static class Flops
{
    /// <summary>FLOPs per token of one training step at context length <paramref name="context"/>.</summary>
    public static FlopCount PerToken(CausalLM model, int context)
    {
        double forward = 0, backwardInput = 0, backwardWeight = 0;
        foreach (var (name, module) in model.named_modules())
        {
            if (module is not Linear linear) continue;
            var dense = 2.0 * linear.InFeatures * linear.OutFeatures;
            forward += dense;
            backwardInput += dense;
            if (linear.Weight.requires_grad) backwardWeight += dense;
            foreach (var lora in linear.SidePaths.OfType<LoraLinear>())
            {
                var low = 2.0 * lora.Rank * (linear.InFeatures + linear.OutFeatures);
                forward += low;
                backwardInput += low;
                if (lora.A.requires_grad) backwardWeight += 2.0 * lora.Rank * linear.InFeatures;
                if (lora.B.requires_grad) backwardWeight += 2.0 * lora.Rank * linear.OutFeatures;
            }
            if (name.EndsWith("q_proj", StringComparison.Ordinal))
            {
                var attention = 2.0 * 2.0 * context * linear.OutFeatures;
                forward += attention;
                backwardInput += 2 * attention;
            }
        }
        var hasHead = model.named_modules().Any(m => m.name == "lm_head");
        if (!hasHead)
        {
            var embed = model.named_parameters().First(p => p.name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)).parameter;
            var head = 2.0 * embed.shape[0] * embed.shape[1];
            forward += head;
            backwardInput += head;
            if (embed.requires_grad) backwardWeight += head;
        }
        return new FlopCount(forward, backwardInput, backwardWeight);
    }

    /// <summary>A knot: the merge B A (r x in into out x in) of every adapted layer, 2 r in out each.</summary>
    public static double KnotMerge(LoraAdapters adapters) =>
        adapters.Layers.Values.Sum(l => 2.0 * l.Rank * l.Base.InFeatures * l.Base.OutFeatures);

    /// <summary>Per token: the weight gradient of every adapted layer's frozen weight, 2 in out each (gradient init's capture step).</summary>
    public static double FrozenWeightGradients(LoraAdapters adapters) =>
        adapters.Layers.Values.Sum(l => 2.0 * l.Base.InFeatures * l.Base.OutFeatures);

    /// <summary>A thin SVD of an m x n matrix with its singular vectors: 14 M N^2 + 8 N^3, M = max(m, n), N = min(m, n) (Golub and Van Loan).</summary>
    public static double ThinSvd(long m, long n)
    {
        var (big, small) = (Math.Max(m, n), (double)Math.Min(m, n));
        return 14.0 * big * small * small + 8.0 * small * small * small;
    }
}

/// <summary>Training FLOPs of a run so far, per link (the count per token depends on the link's rank and the context).</summary>
public sealed class FlopMeter(CausalLM model, double[] perLink)
{
    readonly Dictionary<(int Link, int Context), double> perToken = [];

    public void Add(int link, TrainingBatch batch)
    {
        var key = (link, batch.SequenceLength);
        if (!perToken.TryGetValue(key, out var flops))
            perToken[key] = flops = Flops.PerToken(model, batch.SequenceLength).Training;
        perLink[link] += flops * batch.Tokens;
    }

    /// <summary>Work outside the steps' per-token count (a knot's merge, gradient init's gradient and SVD), charged to <paramref name="link"/>.</summary>
    public void AddOnce(int link, double flops) => perLink[link] += flops;
}
