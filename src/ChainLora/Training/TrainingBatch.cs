using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Training;

/// <summary>One micro-batch; it knows its own objective, so tasks decide what is learned.</summary>
public abstract class TrainingBatch
{
    /// <summary>Scalar loss (fp32, differentiable) of <paramref name="model"/> on this batch.</summary>
    public abstract Tensor Loss(CausalLM model);

    /// <summary>
    /// Back-propagates <paramref name="scale"/> x the loss (gradients accumulate into the
    /// parameters) and returns that scaled loss. Batches may do this more cheaply than
    /// <c>Loss(model).backward()</c>, as long as the gradients are the same.
    /// </summary>
    public virtual double Backward(CausalLM model, double scale)
    {
        using var loss = Loss(model).mul(scale);
        loss.backward();
        return loss.item<float>();
    }
    /// <summary>Tokens fed to the model (for tokens/s).</summary>
    public abstract long Tokens { get; }
    /// <summary>Context length T of the batch (attention cost grows with it).</summary>
    public abstract int SequenceLength { get; }
}

/// <summary>Supplies the micro-batches of each epoch, in a deterministic order for a given epoch.</summary>
public interface ITrainingData
{
    int BatchesPerEpoch { get; }
    /// <summary>Batches of epoch <paramref name="epoch"/> (0-based); tensors are created lazily, per batch.</summary>
    IEnumerable<TrainingBatch> Epoch(int epoch);
}

/// <summary>
/// Causal-LM loss on marked target tokens: <c>Targets</c> (B, T) holds the token each position
/// must predict next, or -100 where nothing is learned (prompt tokens, padding). Logits are
/// computed only at the marked positions.
/// </summary>
public sealed class LmBatch(Tensor inputIds, Tensor targets, Tensor? attentionMask = null, long headChunkElements = LmBatch.DefaultHeadChunkElements)
    : TrainingBatch
{
    public Tensor InputIds { get; } = inputIds;
    public Tensor Targets { get; } = targets;
    public Tensor? AttentionMask { get; } = attentionMask;
    public override long Tokens => InputIds.numel();
    public override int SequenceLength => (int)InputIds.shape[1];

    public override Tensor Loss(CausalLM model)
    {
        var marked = MarkedPositions.Select(Targets);
        return nn.functional.cross_entropy(model.ComputeLogits(marked.Rows(model.ForwardHidden(InputIds, AttentionMask))), marked.Targets);
    }

    /// <summary>
    /// Logit elements per chunk of the head. 8 Mi (32 MB of fp32 logits, 262 rows at a 32000-token
    /// vocabulary) was fastest for llama15m on the development CPU: 1.02 s for forward + backward
    /// against 1.15 s at 4 Mi, 1.59 s at 1 Mi and 1.30-1.40 s unchunked.
    /// </summary>
    public const long DefaultHeadChunkElements = 8L << 20;

    /// <summary>Rows of logits per chunk of <paramref name="elements"/> logits.</summary>
    public static long HeadChunkRows(int vocabSize, long elements = DefaultHeadChunkElements) => Math.Max(16, elements / vocabSize);

    /// <summary>
    /// Logit elements per chunk on <paramref name="device"/>. On a GPU small chunks only cost (24
    /// GEMMs of 166 rows for OPT-1.3B at 8 x 512 tokens, where one of 4096 runs at full speed): fp32
    /// logits may take a sixteenth of the free device memory (NVML), else 1 GiB.
    /// </summary>
    long HeadChunkElementsOn(Device device)
    {
        if (device.type != TorchSharp.DeviceType.CUDA) return headChunkElements;
        var free = Runtime.DeviceMemory.Query(device.index)?.Free ?? 16L << 30;
        return Math.Max(headChunkElements, free / 16 / sizeof(float));
    }

    /// <summary>
    /// The same gradients as <see cref="Loss"/>, with the head and the cross-entropy run chunk by
    /// chunk: each chunk's logits (N_c, V) are formed, turned in place into their own gradient,
    /// back-propagated into the hidden states and freed before the next, and then the body
    /// back-propagates once. With a 32000-token vocabulary the full (N, V) logits and their
    /// gradients are hundreds of MB of fresh pages per step.
    /// </summary>
    public override double Backward(CausalLM model, double scale)
    {
        using var scope = NewDisposeScope();
        var marked = MarkedPositions.Select(Targets);
        var rows = marked.Rows(model.ForwardHidden(InputIds, AttentionMask));
        var n = rows.shape[0];
        var chunk = HeadChunkRows(model.VocabSize, HeadChunkElementsOn(rows.device));
        var grads = new List<Tensor>();
        var total = zeros(1, device: rows.device);
        for (long start = 0; start < n; start += chunk)
        {
            using var inner = NewDisposeScope();
            var length = Math.Min(chunk, n - start);
            var part = rows.narrow(0, start, length).detach().requires_grad_(true);
            var logits = model.ComputeLogits(part);
            // The head's backward needs its input and weight, not the logits, so they may be overwritten.
            var gradient = logits.detach();
            using (no_grad()) total.add_(CrossEntropyIntoGradient(gradient, marked.Targets.narrow(0, start, length), scale / n));
            logits.backward([gradient]);
            grads.Add(part.grad!.detach().MoveToOuterDisposeScope());
        }
        rows.backward([grads.Count == 1 ? grads[0] : cat(grads)]);
        // The one wait for the device in a micro-batch, once its backward is queued.
        return total.item<float>();
    }

    /// <summary>
    /// Exponents are clamped here before exp: libtorch's vectorised exp takes a slow path for
    /// results below the fp32 range (exp(-100) runs 15x slower than exp(-5)). A probability
    /// raised to exp(-87) = 1.6e-38 changes nothing measurable.
    /// </summary>
    const double MinExponent = -87;

    /// <summary>
    /// Overwrites <paramref name="logits"/> (N, V) fp32 with <paramref name="coefficient"/> x the
    /// gradient of the summed cross-entropy, softmax(logits) - onehot(targets), and returns
    /// <paramref name="coefficient"/> x that sum (a scalar on the logits' device). A few in-place passes over the chunk, where
    /// autograd's log_softmax, nll_loss and their backward kernels each allocate a full (N, V) tensor.
    /// </summary>
    internal static Tensor CrossEntropyIntoGradient(Tensor logits, Tensor targets, double coefficient)
    {
        using var scope = NewDisposeScope();
        var index = targets.unsqueeze(1);
        var picked = logits.gather(1, index);                                    // (N, 1)
        var max = logits.amax([1], keepdim: true);
        logits.sub_(max).clamp_min_(MinExponent).exp_();
        var sum = logits.sum([1], keepdim: true);
        var loss = sum.log().add_(max).sub_(picked).sum().mul_(coefficient);
        logits.mul_(sum.reciprocal_().mul_(coefficient));
        logits.scatter_add_(1, index, full_like(picked, -coefficient));
        return loss.MoveToOuterDisposeScope();
    }
}
