// Classification over candidates (MeZO's --train_as_classification): each candidate's mean
// option-token log-probability is a logit, and the loss is cross-entropy over an example's candidates.
using ChainLora.Evaluation;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tasks;

public sealed class ChoiceBatch : TrainingBatch
{
    // Candidates that share their prompt instance run it once (SharedPromptBatch); otherwise every
    // candidate is a whole right-padded row.
    readonly SharedPromptBatch? shared;
    readonly Tensor? inputIds, targets;

    /// <summary>(B, C) int64: the row of each example's c-th candidate, or N (a -inf logit) past its last one.</summary>
    public Tensor Slots { get; }
    /// <summary>(B) int64: the correct candidate of each example.</summary>
    public Tensor Labels { get; }
    /// <summary>Whether the candidates' prompts run once per example rather than once per candidate.</summary>
    public bool SharesPrompts => shared is not null;

    ChoiceBatch(SharedPromptBatch? shared, Tensor? inputIds, Tensor? targets, Tensor slots, Tensor labels) =>
        (this.shared, this.inputIds, this.targets, Slots, Labels) = (shared, inputIds, targets, slots, labels);

    public override long Tokens => shared?.Tokens ?? inputIds!.numel();
    public override int SequenceLength => shared?.SequenceLength ?? (int)inputIds!.shape[1];

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
            return new(SharedPromptBatch.Pack(rows, groups, device, padId), null, null, slotTensor, labels);
        var (input, rowTargets) = ContinuationScoring.Pack(rows, device, padId);
        return new(null, input, rowTargets, slotTensor, labels);
    }

    public override Tensor Loss(CausalLM model)
    {
        var scores = shared is not null ? shared.MeanLogProb(model)                              // (N)
                   : ContinuationScoring.MeanLogProb(model, inputIds!, targets!);
        var padded = cat([scores, full(1, float.NegativeInfinity, device: scores.device)]);    // (N + 1)
        var logits = padded.index_select(0, Slots.flatten()).view(Slots.shape);                // (B, C)
        return nn.functional.cross_entropy(logits, Labels);
    }
}
