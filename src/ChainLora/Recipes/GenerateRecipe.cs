// Continue a prompt (`chainlora generate`): encode it with BOS, generate until the tokenizer's EOS
// or the new-token budget (cut to the room the model's context leaves), greedy at temperature 0.
using ChainLora.Evaluation;
using ChainLora.IO.Hub;
using ChainLora.Loading;
using static TorchSharp.torch;

namespace ChainLora.Recipes;

public sealed record GenerateRecipeOptions
{
    /// <summary>A model folder or a Hub id org/name[@revision]; not read when a loaded model is passed.</summary>
    public string Model { get; init; } = "";
    public ScalarType BaseDtype { get; init; } = ScalarType.Float32;
    /// <summary>Where to compute; null is the CPU.</summary>
    public Device? Device { get; init; }
    /// <summary>The text to continue; encoded with BOS.</summary>
    public required string Prompt { get; init; }
    /// <summary>The most new tokens; fewer when the prompt leaves less room in the model's context.</summary>
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>0 is greedy; above 0 samples from softmax(logits / T).</summary>
    public double Temperature { get; init; }
    /// <summary>Seeds the sampling (unused when greedy).</summary>
    public long Seed { get; init; }

    /// <summary>The decoding settings, before the prompt is known (no clamp, no stop ids).</summary>
    public GenerationOptions Decoding => new(MaxNewTokens, Temperature, Seed);

    /// <summary>Every setting checked before anything is loaded; the error names the value.</summary>
    public GenerateRecipeOptions Validate()
    {
        Decoding.Validate();
        return this;
    }
}

/// <summary>
/// What a generation produced: <see cref="Text"/> is the prompt as given followed by the
/// continuation (what `chainlora generate` prints); <see cref="MaxNewTokens"/> the budget after the
/// clamp to the model's context; <see cref="Stopped"/> whether the end-of-sequence id ended it.
/// </summary>
public sealed record GenerateResult(string Prompt, string Continuation, IReadOnlyList<int> PromptIds, IReadOnlyList<int> NewIds,
    int MaxNewTokens, bool Stopped)
{
    public string Text => Prompt + Continuation;
}

public static class GenerateRecipe
{
    /// <summary>Loads <see cref="GenerateRecipeOptions.Model"/> and continues the prompt; downloads are reported to <paramref name="download"/>.</summary>
    public static GenerateResult Run(GenerateRecipeOptions options, IProgress<HubFileProgress>? download = null, CancellationToken stop = default)
    {
        if (options.Model.Length == 0) throw new ArgumentException("generate: no model given (a folder or a Hub id)");
        options.Validate();
        using var loaded = PretrainedModel.Load(options.Model, options.BaseDtype, options.Device, download);
        return Run(loaded, options, stop);
    }

    /// <summary>
    /// Continues <see cref="GenerateRecipeOptions.Prompt"/> with <paramref name="model"/>. The new-token
    /// budget is cut to the room the prompt leaves in the context (a prompt that fills it is refused);
    /// generation stops after the tokenizer's EOS (not kept). <paramref name="stop"/> ends it with an
    /// <see cref="OperationCanceledException"/> before the next token.
    /// </summary>
    public static GenerateResult Run(PretrainedModel model, GenerateRecipeOptions options, CancellationToken stop = default)
    {
        var decoding = options.Validate().Decoding;
        var tok = model.Tokenizer;
        var ids = tok.Encode(options.Prompt, addBos: true);
        var room = model.Model.MaxPositions - ids.Count;
        if (room < 1) throw new ArgumentException($"--prompt has {ids.Count} tokens, the model's context is {model.Model.MaxPositions}");
        decoding = decoding with { MaxNewTokens = Math.Min(decoding.MaxNewTokens, room), StopIds = new HashSet<int> { tok.EosId }, Stop = stop };
        var produced = Generation.Generate(model.Model, [ids], decoding, tok.PadId)[0];
        // Decoded with the prompt, so that a token joining the prompt's last word decodes as it reads.
        var continuation = tok.Decode([.. ids, .. produced])[tok.Decode(ids).Length..];
        return new GenerateResult(options.Prompt, continuation, ids, produced, decoding.MaxNewTokens,
            produced.Count < decoding.MaxNewTokens);
    }
}
