// Classification over candidates (MeZO's --train_as_classification): each candidate's mean
// option-token log-probability is a logit, and the loss is cross-entropy over an example's candidates.
using ChainLora.Evaluation;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tasks;

public sealed class ChoiceBatch : TrainingBatch
{
    /// <summary>(N, T) int64: every candidate of every example, right-padded.</summary>
    public Tensor InputIds { get; }
    /// <summary>(N, T) int64: option tokens to score, -100 elsewhere.</summary>
    public Tensor Targets { get; }
    /// <summary>(B, C) int64: the row of each example's c-th candidate, or N (a -inf logit) past its last one.</summary>
    public Tensor Slots { get; }
    /// <summary>(B) int64: the correct candidate of each example.</summary>
    public Tensor Labels { get; }

    ChoiceBatch(Tensor inputIds, Tensor targets, Tensor slots, Tensor labels) =>
        (InputIds, Targets, Slots, Labels) = (inputIds, targets, slots, labels);

    public override long Tokens => InputIds.numel();
    public override int SequenceLength => (int)InputIds.shape[1];

    public static ChoiceBatch Create(IReadOnlyList<EncodedChoice> examples, Device device, int padId = 0)
    {
        var rows = examples.SelectMany(e => e.Candidates).ToList();
        var (input, targets) = ContinuationScoring.Pack(rows, device, padId);
        var width = examples.Max(e => e.Candidates.Count);
        var slots = new long[examples.Count * width];
        Array.Fill(slots, rows.Count);
        var row = 0;
        for (var i = 0; i < examples.Count; i++)
            for (var c = 0; c < examples[i].Candidates.Count; c++)
                slots[i * width + c] = row++;
        var labels = examples.Select(e => (long)e.Label).ToArray();
        return new(input, targets, tensor(slots, [examples.Count, width], device: device), tensor(labels, device: device));
    }

    public override Tensor Loss(CausalLM model)
    {
        var scores = ContinuationScoring.MeanLogProb(model, InputIds, Targets);                 // (N)
        var padded = cat([scores, full(1, float.NegativeInfinity, device: scores.device)]);    // (N + 1)
        var logits = padded.index_select(0, Slots.flatten()).view(Slots.shape);                // (B, C)
        return nn.functional.cross_entropy(logits, Labels);
    }
}
