// Log-probability of a continuation after a prompt (MeZO's scoring of candidates): sequences are
// right-padded, so no attention mask is needed (a causal model never looks ahead at the padding)
// and positions are unchanged; logits are computed only where a continuation token is predicted.
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Evaluation;

/// <summary>Token ids of a prompt (BOS included if wanted) and of what follows it.</summary>
public sealed record PromptAndContinuation(IReadOnlyList<int> Prompt, IReadOnlyList<int> Continuation)
{
    public int Length => Prompt.Count + Continuation.Count;
}

public static class ContinuationScoring
{
    public const long Ignore = -100;

    /// <summary>
    /// Inputs (N, T) int64, right-padded with <paramref name="padId"/>, and targets (N, T) int64:
    /// the next token where it belongs to the continuation, else -100. T is the longest
    /// prompt + continuation minus one (the last token is only predicted).
    /// </summary>
    public static (Tensor Input, Tensor Targets) Pack(IReadOnlyList<PromptAndContinuation> rows, Device device, int padId = 0)
    {
        if (rows.Count == 0) throw new ArgumentException("nothing to pack");
        var t = rows.Max(r => r.Length) - 1;
        var input = new long[rows.Count * t];
        var targets = new long[rows.Count * t];
        Array.Fill(input, padId);
        Array.Fill(targets, Ignore);
        for (var i = 0; i < rows.Count; i++)
        {
            var (prompt, continuation) = (rows[i].Prompt, rows[i].Continuation);
            if (prompt.Count == 0 || continuation.Count == 0) throw new ArgumentException($"row {i}: empty prompt or continuation");
            for (var j = 0; j < rows[i].Length - 1; j++)
            {
                input[i * t + j] = j < prompt.Count ? prompt[j] : continuation[j - prompt.Count];
                if (j + 1 >= prompt.Count) targets[i * t + j] = continuation[j + 1 - prompt.Count];
            }
        }
        return (tensor(input, [rows.Count, t], device: device), tensor(targets, [rows.Count, t], device: device));
    }

    /// <summary>
    /// Mean log-probability (N) fp32 of each row's marked targets; differentiable, so it serves as
    /// a classification logit in training too. <paramref name="input"/>, <paramref name="targets"/>: (N, T) int64.
    /// </summary>
    public static Tensor MeanLogProb(CausalLM model, Tensor input, Tensor targets)
    {
        var hidden = model.ForwardHidden(input);                                // (N, T, D)
        var (n, t) = (input.shape[0], input.shape[1]);
        var flatTargets = targets.reshape(-1);
        // index_select (backward: index_add) rather than boolean indexing (backward: a slow index_put).
        var index = flatTargets.ne(Ignore).nonzero().squeeze(1);                 // (M)
        var logits = model.ComputeLogits(hidden.reshape(n * t, -1).index_select(0, index));   // (M, V)
        var logProbs = nn.functional.cross_entropy(logits, flatTargets.index_select(0, index), reduction: nn.Reduction.None).neg();
        var rows = index.div(t, RoundingMode.floor);                             // (M) the row of each target
        var sums = zeros(n, device: input.device).index_add(0, rows, logProbs, 1);
        var counts = zeros(n, device: input.device).index_add(0, rows, ones_like(logProbs), 1);
        return sums / counts;
    }

    /// <summary>
    /// Mean continuation log-probability of every row, batched by length (longest first) so that
    /// a batch holds at most <paramref name="batchTokens"/> padded tokens.
    /// </summary>
    public static double[] Score(CausalLM model, IReadOnlyList<PromptAndContinuation> rows, int batchTokens = 8192, int padId = 0)
    {
        var scores = new double[rows.Count];
        var order = Enumerable.Range(0, rows.Count).OrderByDescending(i => rows[i].Length).ToList();
        using var _ = no_grad();
        for (var start = 0; start < order.Count;)
        {
            var t = rows[order[start]].Length;
            var count = Math.Max(1, Math.Min(order.Count - start, batchTokens / t));
            var batch = order.GetRange(start, count);
            using var scope = NewDisposeScope();
            var (input, targets) = Pack(batch.Select(i => rows[i]).ToList(), model.Device, padId);
            var values = MeanLogProb(model, input, targets).cpu().data<float>().ToArray();
            for (var k = 0; k < count; k++) scores[batch[k]] = values[k];
            start += count;
        }
        return scores;
    }
}
