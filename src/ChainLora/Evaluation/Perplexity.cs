// Mean negative log-likelihood per token of a text under a causal LM: the text is tokenized
// once, cut into windows of BOS + (context - 1) tokens, and every token after BOS is scored.
using ChainLora.Models;
using ChainLora.Tasks;
using ChainLora.Tokenization;
using static TorchSharp.torch;

namespace ChainLora.Evaluation;

public sealed record PerplexityResult(double NllPerToken, long Tokens)
{
    public double Perplexity => Math.Exp(NllPerToken);
}

public static class Perplexity
{
    /// <summary>
    /// Scores <paramref name="text"/> in windows of <paramref name="context"/> tokens (null: the
    /// model's maximum), <paramref name="batchSize"/> windows per forward pass. <paramref name="cancel"/>
    /// is looked at before each batch.
    /// </summary>
    public static PerplexityResult OfText(CausalLM model, ITextTokenizer tokenizer, string text, int batchSize = 8, int? context = null,
        CancellationToken cancel = default)
    {
        var length = TextCorpus.WindowLength(context, model.MaxPositions);
        var ids = tokenizer.Encode(text, addBos: false);
        if (ids.Count == 0) throw new ArgumentException("the text has no tokens to score");
        return OfTokens(model, ids, tokenizer.BosId, batchSize, length, cancel);
    }

    public static PerplexityResult OfTokens(CausalLM model, IReadOnlyList<int> ids, int bosId, int batchSize = 8, int? context = null,
        CancellationToken cancel = default) =>
        OfWindows(model, TextCorpus.Windows(ids, bosId, TextCorpus.WindowLength(context, model.MaxPositions)), batchSize, cancel);

    /// <summary>Scores every token after the first of each window (at most MaxPositions tokens each).</summary>
    public static PerplexityResult OfWindows(CausalLM model, IReadOnlyList<int[]> windows, int batchSize = 8, CancellationToken cancel = default)
    {
        double nll = 0;
        long count = 0;
        var scored = 0;
        using var _ = no_grad();
        foreach (var batch in windows.Chunk(batchSize))
        {
            if (cancel.IsCancellationRequested)
                throw new OperationCanceledException($"scoring stopped after {scored} of {windows.Count} windows", cancel);
            scored += batch.Length;
            using var scope = NewDisposeScope();
            var (input, targets, mask) = Pack(batch, model.Device);
            var logits = model.Forward(input);
            var losses = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1),
                reduction: nn.Reduction.None);
            nll += (losses * mask.reshape(-1)).sum().item<float>();
            count += (long)mask.sum().item<float>();
        }
        return new PerplexityResult(nll / count, count);
    }

    // Right-pads windows; targets are the next tokens, mask marks real targets.
    static (Tensor Input, Tensor Targets, Tensor Mask) Pack(int[][] windows, Device device)
    {
        var t = windows.Max(w => w.Length) - 1;
        var input = new long[windows.Length * t];
        var targets = new long[windows.Length * t];
        var mask = new float[windows.Length * t];
        for (var i = 0; i < windows.Length; i++)
            for (var j = 0; j < windows[i].Length - 1; j++)
            {
                input[i * t + j] = windows[i][j];
                targets[i * t + j] = windows[i][j + 1];
                mask[i * t + j] = 1;
            }
        return (tensor(input, [windows.Length, t], device: device), tensor(targets, [windows.Length, t], device: device),
            tensor(mask, [windows.Length, t], device: device));
    }
}
