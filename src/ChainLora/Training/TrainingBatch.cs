using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Training;

/// <summary>One micro-batch; it knows its own objective, so tasks decide what is learned.</summary>
public abstract class TrainingBatch
{
    /// <summary>Scalar loss (fp32, differentiable) of <paramref name="model"/> on this batch.</summary>
    public abstract Tensor Loss(CausalLM model);
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
public sealed class LmBatch(Tensor inputIds, Tensor targets, Tensor? attentionMask = null) : TrainingBatch
{
    public Tensor InputIds { get; } = inputIds;
    public Tensor Targets { get; } = targets;
    public Tensor? AttentionMask { get; } = attentionMask;
    public override long Tokens => InputIds.numel();
    public override int SequenceLength => (int)InputIds.shape[1];

    public override Tensor Loss(CausalLM model)
    {
        var hidden = model.ForwardHidden(InputIds, AttentionMask);          // (B, T, D)
        var marked = Targets.ne(-100);                                     // (B, T)
        var logits = model.ComputeLogits(hidden[marked]);                  // (N, V)
        return nn.functional.cross_entropy(logits, Targets[marked]);
    }
}
