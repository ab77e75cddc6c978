// The sft objective and metric: next-token loss on the tokens an example's loss mask marks (its
// responses), rows right-padded as in ContinuationScoring (a causal model never looks ahead at
// the padding). Held out, the mean NLL over those tokens and its exponential, the perplexity.
using ChainLora.Models;
using ChainLora.Tasks;
using static TorchSharp.torch;

namespace ChainLora.Evaluation;

public static class ResponseLoss
{
    /// <summary>
    /// Inputs and targets, both (N, T) row-major, T the longest row minus one: input[t] = ids[t],
    /// right-padded with <paramref name="padId"/>; target[t] = ids[t + 1] where LossMask[t + 1], else -100.
    /// </summary>
    public static (long[] Input, long[] Targets, int Width) Pack(IReadOnlyList<SftEncoded> rows, int padId)
    {
        if (rows.Count == 0) throw new ArgumentException("nothing to pack");
        var t = rows.Max(r => r.InputIds.Length) - 1;
        if (t < 1) throw new ArgumentException("every row holds a single token: nothing to predict");
        var input = new long[rows.Count * t];
        var targets = new long[rows.Count * t];
        Array.Fill(input, padId);
        Array.Fill(targets, MarkedPositions.Ignore);
        for (var i = 0; i < rows.Count; i++)
        {
            var (ids, mask) = (rows[i].InputIds, rows[i].LossMask);
            for (var j = 0; j < ids.Length - 1; j++)
            {
                input[i * t + j] = ids[j];
                if (mask[j + 1]) targets[i * t + j] = ids[j + 1];
            }
        }
        return (input, targets, t);
    }

    public static (Tensor Input, Tensor Targets) Tensors(IReadOnlyList<SftEncoded> rows, Device device, int padId)
    {
        var (input, targets, t) = Pack(rows, padId);
        return (tensor(input, [rows.Count, t], device: device), tensor(targets, [rows.Count, t], device: device));
    }

    /// <summary>Mean NLL over every marked token of <paramref name="rows"/> (not a mean of per-row means), and its perplexity.</summary>
    public static EvalOutcome Evaluate(CausalLM model, IReadOnlyList<SftEncoded> rows, int padId, int batchTokens = 8192)
    {
        if (rows.Count == 0) throw new ArgumentException("no sft examples to evaluate");
        model.eval();
        var order = Enumerable.Range(0, rows.Count).OrderByDescending(i => rows[i].InputIds.Length).ToList();
        double nll = 0;
        long count = 0;
        using var _ = no_grad();
        for (var start = 0; start < order.Count;)
        {
            var width = rows[order[start]].InputIds.Length;
            var n = Math.Max(1, Math.Min(order.Count - start, batchTokens / width));
            var batch = order.GetRange(start, n).Select(i => rows[i]).ToList();
            using var scope = NewDisposeScope();
            var (input, targets) = Tensors(batch, model.Device, padId);
            var means = ContinuationScoring.MeanLogProb(model, input, targets).cpu().data<float>().ToArray();
            var counts = targets.ne(MarkedPositions.Ignore).sum(1).cpu().data<long>().ToArray();
            for (var k = 0; k < n; k++)
            {
                nll -= (double)means[k] * counts[k];
                count += counts[k];
            }
            start += n;
        }
        var mean = nll / count;
        return new(new Dictionary<string, double> { ["response_nll"] = mean, ["perplexity"] = Math.Exp(mean) }, []);
    }
}
