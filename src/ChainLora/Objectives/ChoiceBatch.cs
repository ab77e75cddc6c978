// Classification over candidates (MeZO's --train_as_classification): each candidate's mean
// option-token log-probability is a logit, and the loss is cross-entropy over an example's candidates.
using ChainLora.Evaluation;
using ChainLora.Models;
using ChainLora.Tasks;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Objectives;

public sealed class ChoiceBatch : TrainingBatch
{
    // Mean option log-probability (N) of every candidate, in row order.
    readonly Func<CausalLM, Tensor> scores;

    /// <summary>(B, C) int64: the row of each example's c-th candidate, or N (a -inf logit) past its last one.</summary>
    public Tensor Slots { get; }
    /// <summary>(B) int64: the correct candidate of each example.</summary>
    public Tensor Labels { get; }
    /// <summary>
    /// Whether candidates holding one prompt instance run it once (<see cref="SharedPromptBatch"/>)
    /// rather than each as a whole right-padded row.
    /// </summary>
    public bool SharesPrompts { get; }
    public override long Tokens { get; }
    public override int SequenceLength { get; }

    ChoiceBatch(Func<CausalLM, Tensor> scores, bool sharesPrompts, long tokens, int sequenceLength, Tensor slots, Tensor labels) =>
        (this.scores, SharesPrompts, Tokens, SequenceLength, Slots, Labels) = (scores, sharesPrompts, tokens, sequenceLength, slots, labels);

    public static ChoiceBatch Create(IReadOnlyList<EncodedChoice> examples, Device device, int padId = 0)
    {
        var rows = examples.SelectMany(e => e.Candidates).ToList();
        var width = examples.Max(e => e.Candidates.Count);
        var slots = new long[examples.Count * width];
        Array.Fill(slots, rows.Count);
        var row = 0;
        for (var i = 0; i < examples.Count; i++)
            for (var c = 0; c < examples[i].Candidates.Count; c++)
                slots[i * width + c] = row++;
        var slotTensor = tensor(slots, [examples.Count, width], device: device);
        var labels = tensor(examples.Select(e => (long)e.Label).ToArray(), device: device);

        var groups = ContinuationScoring.PromptGroups(rows);
        if (groups.Any(g => g.Count > 1))
        {
            var shared = SharedPromptBatch.Pack(rows, groups, device, padId);
            return new(shared.MeanLogProb, true, shared.Tokens, shared.SequenceLength, slotTensor, labels);
        }
        var (input, targets) = ContinuationScoring.Pack(rows, device, padId);
        return new(model => ContinuationScoring.MeanLogProb(model, input, targets), false, input.numel(), (int)input.shape[1], slotTensor, labels);
    }

    public override Tensor Loss(CausalLM model)
    {
        var rowScores = scores(model);                                                          // (N)
        var padded = cat([rowScores, full(1, float.NegativeInfinity, device: rowScores.device)]); // (N + 1)
        var logits = padded.index_select(0, Slots.flatten()).view(Slots.shape);                // (B, C)
        return nn.functional.cross_entropy(logits, Labels);
    }
}
