// Log-probability of a continuation after a prompt (MeZO's scoring of candidates): sequences are
// right-padded, so no attention mask is needed (a causal model never looks ahead at the padding)
// and positions are unchanged; logits are computed only where a continuation token is predicted.
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Evaluation;

/// <summary>Token ids of a prompt (BOS included if wanted) and of what follows it.</summary>
public sealed record PromptAndContinuation(IReadOnlyList<int> Prompt, IReadOnlyList<int> Continuation)
{
    public int Length => Prompt.Count + Continuation.Count;
}

public static class ContinuationScoring
{
    public const long Ignore = MarkedPositions.Ignore;

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
    public static Tensor MeanLogProb(CausalLM model, Tensor input, Tensor targets) =>
        MeanLogProbOf(model, model.ForwardHidden(input), targets);

    /// <summary>As <see cref="MeanLogProb"/>, from hidden states (N, T, D) already computed.</summary>
    static Tensor MeanLogProbOf(CausalLM model, Tensor hidden, Tensor targets)
    {
        var (n, t) = (targets.shape[0], targets.shape[1]);
        var (marked, markedTargets, index) = MarkedPositions.Gather(hidden, targets);   // (M, D), (M), (M)
        var logProbs = nn.functional.cross_entropy(model.ComputeLogits(marked), markedTargets, reduction: nn.Reduction.None).neg();
        var rows = index.div(t, RoundingMode.floor);                             // (M) the row of each target
        var sums = zeros(n, device: targets.device).index_add(0, rows, logProbs, 1);
        var counts = zeros(n, device: targets.device).index_add(0, rows, ones_like(logProbs), 1);
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

    /// <summary>
    /// <see cref="Score"/> for candidates that share their prompt: consecutive rows holding the same
    /// Prompt instance (as <c>PromptEncoder.Choice</c> makes them) run the prompt once, left-padded
    /// with a mask and cached, and then only each candidate's own tokens. Same scores as Score (to
    /// float rounding); about K times less prompt work for K candidates.
    /// </summary>
    public static double[] ScoreSharingPrompts(CausalLM model, IReadOnlyList<PromptAndContinuation> rows, int batchTokens = 8192, int padId = 0)
    {
        var groups = new List<(int Start, int Count)>();
        for (var i = 0; i < rows.Count;)
        {
            var j = i + 1;
            while (j < rows.Count && ReferenceEquals(rows[j].Prompt, rows[i].Prompt)) j++;
            groups.Add((i, j - i));
            i = j;
        }
        if (groups.All(g => g.Count == 1)) return Score(model, rows, batchTokens, padId);
        foreach (var r in rows)
            if (r.Prompt.Count == 0 || r.Continuation.Count == 0) throw new ArgumentException("empty prompt or continuation");

        var scores = new double[rows.Count];
        var order = groups.OrderByDescending(g => rows[g.Start].Prompt.Count).ToList();
        var device = model.Device;
        using var _ = no_grad();
        for (var start = 0; start < order.Count;)
        {
            // The prefix is every prompt token but the last, which starts each candidate's tail.
            var prefix = rows[order[start].Start].Prompt.Count - 1;
            var count = 0;
            var tailTokens = 0L;
            while (start + count < order.Count)
            {
                var g = order[start + count];
                var tail = Enumerable.Range(g.Start, g.Count).Max(i => rows[i].Continuation.Count);
                if (count > 0 && ((count + 1L) * prefix > batchTokens || tailTokens + (long)g.Count * tail > batchTokens)) break;
                tailTokens += (long)g.Count * tail;
                count++;
            }
            var batch = order.GetRange(start, count);
            start += count;
            using var scope = NewDisposeScope();
            using var cache = model.NewCache();

            var prefixMask = new long[count * prefix];
            var prefixIds = new long[count * prefix];
            Array.Fill(prefixIds, padId);
            for (var b = 0; b < count; b++)
            {
                var p = rows[batch[b].Start].Prompt;
                var offset = prefix - (p.Count - 1);
                for (var j = 0; j < p.Count - 1; j++)
                {
                    prefixIds[b * prefix + offset + j] = p[j];
                    prefixMask[b * prefix + offset + j] = 1;
                }
            }
            var members = batch.SelectMany((g, b) => Enumerable.Range(g.Start, g.Count).Select(i => (Row: i, Group: b))).ToList();
            // Each tail is the prompt's last token, then the candidate: packed like a one-token prompt.
            var (tailIds, targets) = Pack(members.Select(m => new PromptAndContinuation([rows[m.Row].Prompt[^1]], rows[m.Row].Continuation)).ToList(),
                device, padId);
            var (tailRows, tailLength) = (tailIds.shape[0], tailIds.shape[1]);
            var groupOfRow = tensor(members.Select(m => (long)m.Group).ToArray(), device: device);
            Tensor mask;
            if (prefix > 0)
            {
                var prefixMaskTensor = tensor(prefixMask, [count, prefix], device: device);
                model.ForwardHidden(tensor(prefixIds, [count, prefix], device: device), prefixMaskTensor, cache);
                cache.SelectRows(groupOfRow);
                mask = cat([prefixMaskTensor.index_select(0, groupOfRow), ones(tailRows, tailLength, dtype: ScalarType.Int64, device: device)], 1);
            }
            else mask = ones(tailRows, tailLength, dtype: ScalarType.Int64, device: device);
            var hidden = model.ForwardHidden(tailIds, mask, cache);
            var values = MeanLogProbOf(model, hidden, targets).cpu().data<float>().ToArray();
            for (var m = 0; m < members.Count; m++) scores[members[m].Row] = values[m];
        }
        return scores;
    }
}
