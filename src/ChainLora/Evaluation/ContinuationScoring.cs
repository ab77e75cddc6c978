// Log-probability of a continuation after a prompt (MeZO's scoring of candidates): sequences are
// right-padded, so no attention mask is needed (a causal model never looks ahead at the padding)
// and positions are unchanged; logits are computed only where a continuation token is predicted.
using ChainLora.Models;
using ChainLora.Tasks;
using static TorchSharp.torch;

namespace ChainLora.Evaluation;

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
    internal static Tensor MeanLogProbOf(CausalLM model, Tensor hidden, Tensor targets)
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

    /// <summary>Runs of consecutive rows holding the same Prompt instance (as <c>PromptEncoder.Choice</c> makes them).</summary>
    public static List<(int Start, int Count)> PromptGroups(IReadOnlyList<PromptAndContinuation> rows)
    {
        var groups = new List<(int Start, int Count)>();
        for (var i = 0; i < rows.Count;)
        {
            var j = i + 1;
            while (j < rows.Count && ReferenceEquals(rows[j].Prompt, rows[i].Prompt)) j++;
            groups.Add((i, j - i));
            i = j;
        }
        return groups;
    }

    /// <summary>
    /// <see cref="Score"/> for candidates that share their prompt: each group of <see cref="PromptGroups"/>
    /// runs its prompt once, left-padded with a mask and cached, and then only each candidate's own
    /// tokens. Same scores as Score (to float rounding); about K times less prompt work for K candidates.
    /// </summary>
    public static double[] ScoreSharingPrompts(CausalLM model, IReadOnlyList<PromptAndContinuation> rows, int batchTokens = 8192, int padId = 0)
    {
        var groups = PromptGroups(rows);
        if (groups.All(g => g.Count == 1)) return Score(model, rows, batchTokens, padId);

        var scores = new double[rows.Count];
        var order = groups.OrderByDescending(g => rows[g.Start].Prompt.Count).ToList();
        using var _ = no_grad();
        for (var start = 0; start < order.Count;)
        {
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
            var values = SharedPromptBatch.Pack(rows, batch, model.Device, padId).MeanLogProb(model).cpu().data<float>().ToArray();
            var members = batch.SelectMany(g => Enumerable.Range(g.Start, g.Count)).ToList();
            for (var m = 0; m < members.Count; m++) scores[members[m]] = values[m];
        }
        return scores;
    }
}

/// <summary>
/// Candidate rows packed for two passes: every group's prompt but its last token once (left-padded,
/// with a mask), cached; then, per row, the prompt's last token and the candidate (packed like a
/// one-token prompt) attending to its group's cached prompt. Rows come out in group order.
/// </summary>
public sealed record SharedPromptBatch(Tensor? PrefixIds, Tensor? PrefixMask, Tensor TailIds, Tensor Targets, Tensor GroupOfRow)
{
    /// <summary>Tokens fed to the model.</summary>
    public long Tokens => (PrefixIds?.numel() ?? 0) + TailIds.numel();

    /// <summary>The longest context a row sees.</summary>
    public int SequenceLength => (int)((PrefixIds?.shape[1] ?? 0) + TailIds.shape[1]);

    /// <summary>Packs the rows of <paramref name="groups"/> (ranges of <paramref name="rows"/> sharing one Prompt), in that order.</summary>
    public static SharedPromptBatch Pack(IReadOnlyList<PromptAndContinuation> rows, IReadOnlyList<(int Start, int Count)> groups,
        Device device, int padId = 0)
    {
        if (groups.Count == 0) throw new ArgumentException("nothing to pack");
        foreach (var (start, count) in groups)
            for (var i = start; i < start + count; i++)
                if (rows[i].Prompt.Count == 0 || rows[i].Continuation.Count == 0) throw new ArgumentException($"row {i}: empty prompt or continuation");
                else if (!ReferenceEquals(rows[i].Prompt, rows[start].Prompt)) throw new ArgumentException($"row {i} does not share its group's prompt");
        // The prefix is every prompt token but the last, which starts each candidate's tail.
        var prefix = groups.Max(g => rows[g.Start].Prompt.Count) - 1;
        var members = groups.SelectMany((g, b) => Enumerable.Range(g.Start, g.Count).Select(i => (Row: i, Group: (long)b))).ToList();
        var (tailIds, targets) = ContinuationScoring.Pack(
            members.Select(m => new PromptAndContinuation([rows[m.Row].Prompt[^1]], rows[m.Row].Continuation)).ToList(), device, padId);
        var groupOfRow = tensor(members.Select(m => m.Group).ToArray(), device: device);
        if (prefix == 0) return new(null, null, tailIds, targets, groupOfRow);

        var prefixIds = new long[groups.Count * prefix];
        var prefixMask = new long[groups.Count * prefix];
        Array.Fill(prefixIds, padId);
        for (var b = 0; b < groups.Count; b++)
        {
            var p = rows[groups[b].Start].Prompt;
            var offset = prefix - (p.Count - 1);
            for (var j = 0; j < p.Count - 1; j++)
            {
                prefixIds[b * prefix + offset + j] = p[j];
                prefixMask[b * prefix + offset + j] = 1;
            }
        }
        return new(tensor(prefixIds, [groups.Count, prefix], device: device), tensor(prefixMask, [groups.Count, prefix], device: device),
            tailIds, targets, groupOfRow);
    }

    /// <summary>
    /// Mean log-probability (rows) of each row's candidate, in group order; differentiable (the
    /// gradient flows through the cached prompt into every candidate that attends to it). Under
    /// <see cref="CausalLM.GradientCheckpointing"/> with autograd on, each row runs whole instead:
    /// a cached prompt would keep every layer's activations, which checkpointing exists to avoid.
    /// </summary>
    public Tensor MeanLogProb(CausalLM model)
    {
        var tailMask = ones(TailIds.shape[0], TailIds.shape[1], dtype: ScalarType.Int64, device: TailIds.device);
        if (PrefixIds is null || PrefixMask is null)
            return ContinuationScoring.MeanLogProbOf(model, model.ForwardHidden(TailIds, tailMask), Targets);
        var mask = cat([PrefixMask.index_select(0, GroupOfRow), tailMask], 1);   // (N, prefix + tail)
        if (model.GradientCheckpointing && is_grad_enabled())
        {
            var rows = cat([PrefixIds.index_select(0, GroupOfRow), TailIds], 1);
            var hidden = model.ForwardHidden(rows, mask).narrow(1, PrefixIds.shape[1], TailIds.shape[1]);
            return ContinuationScoring.MeanLogProbOf(model, hidden, Targets);
        }
        using var cache = model.NewCache();
        model.ForwardHidden(PrefixIds, PrefixMask, cache);
        cache.SelectRows(GroupOfRow);
        return ContinuationScoring.MeanLogProbOf(model, model.ForwardHidden(TailIds, mask, cache), Targets);
    }
}
