// Score a model on a task, zero-shot or in-context (MeZO's protocol): load the model (and merge a
// PEFT adapter), draw the task's sample for the seed, score the test sample.
using System.Diagnostics;
using ChainLora.Evaluation;
using ChainLora.Export;
using ChainLora.IO.Hub;
using ChainLora.Loading;
using ChainLora.Tasks;
using static TorchSharp.torch;

namespace ChainLora.Recipes;

public sealed record EvalRecipeOptions
{
    /// <summary>A model folder or a Hub id org/name[@revision]; not read when a loaded model is passed.</summary>
    public string Model { get; init; } = "";
    public ScalarType BaseDtype { get; init; } = ScalarType.Float32;
    /// <summary>Where to compute; null is the CPU.</summary>
    public Device? Device { get; init; }
    public required string Task { get; init; }
    public required string Data { get; init; }
    /// <summary>Seeds the sample and the choice of demonstrations.</summary>
    public long Seed { get; init; }
    /// <summary>The train sample is the pool demonstrations are drawn from (the same sample a train run uses).</summary>
    public int NumTrain { get; init; } = new SampleSizes().Train;
    public int NumEval { get; init; } = new SampleSizes().Eval;
    /// <summary>lm: tokens per window, BOS included; sft: the most tokens an example keeps; null is the model's maximum positions.</summary>
    public int? Context { get; init; }
    /// <summary>lm: where dev comes from (<see cref="TextSplit"/>); the test region is the same under every split.</summary>
    public TextSplit Split { get; init; }
    /// <summary>A text of the model's own domain, scored as "source" (<see cref="TrainRecipeOptions.Source"/>); null scores none.</summary>
    public string? Source { get; init; }
    public int SourceWindows { get; init; } = TrainRecipeOptions.DefaultSourceWindows;
    /// <summary>In-context demonstrations per test example; 0 is zero-shot.</summary>
    public int Demonstrations { get; init; }
    /// <summary>A PEFT LoRA adapter folder merged into the weights before scoring.</summary>
    public string? Adapter { get; init; }
    /// <summary>sft: what an example longer than <see cref="Context"/> tokens becomes.</summary>
    public SftTruncationMode Truncation { get; init; }
    /// <summary>sft: a JSON-lines file for what the model answers to the first <see cref="NumSamples"/> test examples (<see cref="SftSamples"/>); null writes none.</summary>
    public string? Samples { get; init; }
    public int NumSamples { get; init; } = 8;
    /// <summary>sft samples: the most tokens each answer may take.</summary>
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Every setting checked before anything is loaded; the error names the value.</summary>
    public EvalRecipeOptions Validate()
    {
        PreparedTask.CheckSplit(TaskRegistry.Find(Task), Split);
        new SampleSizes(NumTrain, 0, NumEval).Validate();
        if (Demonstrations < 0) throw new ArgumentException($"demonstrations {Demonstrations}: must be >= 0");
        if (SourceWindows < 1) throw new ArgumentException($"source windows {SourceWindows}: must be at least 1");
        var sft = TaskRegistry.Find(Task).Kind == TaskKind.Sft;
        if (Truncation != SftTruncationMode.Cut && !sft)
            throw new ArgumentException($"truncation {IO.EnumNames.Name(Truncation)}: only the sft task truncates its examples; {Task} does not");
        if (Samples is not null && !sft) throw new ArgumentException($"samples: only the sft task writes generation samples; {Task} does not");
        if (NumSamples < 1) throw new ArgumentException($"num samples {NumSamples}: must be at least 1");
        if (MaxNewTokens < 1) throw new ArgumentException($"max new tokens {MaxNewTokens}: must be at least 1");
        return this;
    }
}

public static class EvalRecipe
{
    /// <summary>Loads <see cref="EvalRecipeOptions.Model"/> and scores it; downloads are reported to <paramref name="download"/>.</summary>
    public static TaskEvalResult Run(EvalRecipeOptions options, IProgress<HubFileProgress>? download = null)
    {
        if (options.Model.Length == 0) throw new ArgumentException("eval: no model given (a folder or a Hub id)");
        var clock = Stopwatch.StartNew();
        options.Validate();
        using var loaded = PretrainedModel.Load(options.Model, options.BaseDtype, options.Device, download);
        return Run(loaded, options, clock);
    }

    /// <summary>Scores <paramref name="model"/> (an adapter, if given, is merged into it: the caller's model changes).</summary>
    public static TaskEvalResult Run(PretrainedModel model, EvalRecipeOptions options) => Run(model, options, Stopwatch.StartNew());

    static TaskEvalResult Run(PretrainedModel model, EvalRecipeOptions options, Stopwatch clock)
    {
        options.Validate();
        var definition = TaskRegistry.Find(options.Task);
        if (options.Adapter is { } adapterDir) PeftAdapter.MergeFolderInto(adapterDir, model.Model);
        var sizes = new SampleSizes(options.NumTrain, 0, options.NumEval);
        var chat = new ModelChatTemplate(model.Directory);
        var prepared = PreparedTask.Load(definition, options.Data, sizes, options.Seed, model.Tokenizer,
            PreparedTask.Context(definition, options.Context, model.Model.MaxPositions), options.Split,
            new SftSettings(chat.Renderer, Truncation: options.Truncation)).WithNote(chat.FallbackNote);
        var outcome = prepared.Evaluate(model.Model, model.Tokenizer, new EvalOptions { Demonstrations = options.Demonstrations, Seed = options.Seed })!;
        if (options.Samples is { } samplesPath)
            SftSamples.Write(samplesPath, SftSamples.Generate(model.Model, model.Tokenizer, prepared.Sft!.Test, options.NumSamples, options.MaxNewTokens,
                ChatSession.EndOfTurnIds(model.Tokenizer, model.Directory)));
        return new TaskEvalResult(definition.Name, options.Seed, model.Directory,
            options.Adapter is { } a ? Path.GetFullPath(a) : null, options.Demonstrations, prepared.Data, outcome.Metrics,
            clock.Elapsed.TotalSeconds, TrainRecipe.SourceScore(model, options.Source, options.SourceWindows, options.Context));
    }
}
