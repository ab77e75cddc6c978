// Autoregressive decoding with a KV cache: greedy at temperature 0, else softmax sampling.
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Evaluation;

public sealed record GenerationOptions(int MaxNewTokens = 50, double Temperature = 0, long Seed = 0,
    IReadOnlySet<int>? StopIds = null)
{
    /// <summary>Looked at before each new token: cancelled (Ctrl+C, SIGTERM), generation ends with OperationCanceledException.</summary>
    public CancellationToken Stop { get; init; }

    /// <summary>Called with (prompt index, id) for each new token kept, as it is chosen (streaming).</summary>
    public Action<int, int>? OnToken { get; init; }

    /// <summary>The settings checked; the error names the value.</summary>
    public GenerationOptions Validate()
    {
        if (MaxNewTokens < 1) throw new ArgumentException($"max new tokens {MaxNewTokens}: must be at least 1");
        if (!(Temperature >= 0) || double.IsInfinity(Temperature)) throw new ArgumentException($"temperature {Temperature}: must be a number >= 0");
        return this;
    }
}

public static class Generation
{
    /// <summary>
    /// Continues each prompt of <paramref name="prompts"/> (token ids, BOS included if wanted);
    /// prompts of different lengths are left-padded. Returns the new ids per prompt, stopping after
    /// a stop id (which is not returned) or MaxNewTokens.
    /// </summary>
    public static List<List<int>> Generate(CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, int padId = 0)
    {
        options.Validate();
        var device = model.Device;
        var longest = prompts.Max(p => p.Count);
        if (longest + options.MaxNewTokens > model.MaxPositions)
            throw new ArgumentException($"prompt of {longest} tokens + {options.MaxNewTokens} new tokens exceeds the model's context of {model.MaxPositions}");
        var b = prompts.Count;
        var ids = new long[b * longest];
        var mask = new long[b * longest];
        for (var i = 0; i < b; i++)
            for (var j = 0; j < longest; j++)
            {
                var k = j - (longest - prompts[i].Count);
                ids[i * longest + j] = k >= 0 ? prompts[i][k] : padId;
                mask[i * longest + j] = k >= 0 ? 1 : 0;
            }
        var padded = prompts.Any(p => p.Count != longest);
        var results = Enumerable.Range(0, b).Select(_ => new List<int>()).ToList();
        var done = new bool[b];
        using var generator = options.Temperature > 0 ? new Generator((ulong)options.Seed, device) : null;
        using var _ = no_grad();
        using var cache = model.NewCache();
        using var scope = NewDisposeScope();
        var input = tensor(ids, [b, longest], device: device);
        var attention = padded ? tensor(mask, [b, longest], device: device) : null;
        for (var step = 0; step < options.MaxNewTokens && done.Contains(false); step++)
        {
            if (options.Stop.IsCancellationRequested)
                throw new OperationCanceledException($"generation stopped after {step} of {options.MaxNewTokens} new tokens", options.Stop);
            using var stepScope = NewDisposeScope();
            var hidden = model.ForwardHidden(input, attention, cache);
            var logits = model.ComputeLogits(hidden.select(1, -1));                  // (B, V)
            var next = options.Temperature > 0
                ? multinomial(softmax(logits / options.Temperature, -1), 1, generator: generator).squeeze(1)
                : logits.argmax(-1);
            var chosen = next.to(ScalarType.Int64).cpu().data<long>().ToArray();
            for (var i = 0; i < b; i++)
            {
                if (done[i]) continue;
                var id = (int)chosen[i];
                if (options.StopIds?.Contains(id) ?? false) { done[i] = true; continue; }
                results[i].Add(id);
                options.OnToken?.Invoke(i, id);
            }
            input = next.to(ScalarType.Int64).unsqueeze(1).MoveToOuterDisposeScope();
            if (attention is not null)
                attention = cat([attention, ones(b, 1, dtype: ScalarType.Int64, device: device)], 1).MoveToOuterDisposeScope();
        }
        return results;
    }
}
