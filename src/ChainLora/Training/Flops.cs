// Analytic training FLOPs, counting only what is computed (a multiply-add = 2 FLOPs):
//   forward   every matmul: 2 in out per token for each Linear (and a tied head), LoRA at its
//             rank 2 r (in + out), attention scores and values 2 * 2 T w per layer (T = context,
//             w = query width; masked entries are still computed by a dense kernel)
//   backward  input gradients of every matmul (the same again, attention twice its forward),
//             weight gradients only for trainable matrices: 2 in out, LoRA 2 r (in + out)
// Elementwise work (norms, activations, softmax, optimizer) is left out, as is customary.
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
                if (lora.A.requires_grad) backwardWeight += low;
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
}
