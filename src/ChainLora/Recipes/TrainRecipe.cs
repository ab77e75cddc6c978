// Fine-tune on a task and score it (torchtune-style recipe: Setup, then Run = train, evaluate, save).
//
// Features and the options that control them:
//   model             TrainRecipeOptions.Model (a folder or a Hub id), .BaseDtype, .Device; or a loaded model
//   task and data     .Task, .Data; sampling by .Sizes and .Seed (Sampling)
//   method            .Trainer.Method: lora, cola (chain of .Chain.Length links), full
//   objective         by task kind (TaskTrainingData): classification over candidates, or LM loss
//                     on the answer; lm: LM loss on text windows
//   optimizer, LR     .Trainer (AdamW default, linear decay, warmup ratio, clipping, accumulation)
//   LoRA              .Lora (rank, alpha, dropout, targets, bias), ranks per link .Chain.Ranks
//   batch size        .BatchSize examples (lm: windows) per micro-batch
//   window length     .Context tokens per lm window, or per sft example (default: the model's maximum positions)
//   lm split          .Split: dev shuffled from the train text (the first study's) or contiguous regions
//   sft loss          .TrainOnInputs: loss on prompts too, not only on the responses
//   sft examples      .Truncation: what an example longer than .Context becomes; .Pack: several per row
//   forgetting        .Source: a text of the model's own domain, .SourceWindows of it scored after training
//   start from        .Adapter: a PEFT LoRA adapter merged into the weights before training
//   outputs           .OutDir: result.json (written atomically), train_log.jsonl (per step),
//                     the trained chain in chain/ (RunArtifacts; LoRA and COLA) for `chainlora export`,
//                     and checkpoint/ at every link end and every .CheckpointEvery steps
//   resume            .ResumeFrom: a checkpoint folder (or a run folder holding checkpoint/)
using System.Diagnostics;
using ChainLora.Chain;
using ChainLora.Evaluation;
using ChainLora.Export;
using ChainLora.IO;
using ChainLora.IO.Hub;
using ChainLora.Loading;
using ChainLora.Lora;
using ChainLora.Objectives;
using ChainLora.Tasks;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Recipes;

/// <summary>
/// A train run's options: the one record that goes from the command line (or a job spec) through the
/// recipe to the trainer. Its settings, and those of the records it holds, are written field by field
/// (<see cref="OptionRecords"/>) as result.json's hyperparameters and the checkpoint fingerprint; the
/// plumbing (<see cref="NotRecordedAttribute"/>: output folder, checkpoints, resume, stop) is not a setting.
/// </summary>
public sealed record TrainRecipeOptions
{
    /// <summary>A model folder or a Hub id org/name[@revision]; not read when a loaded model is passed to Setup.</summary>
    [NotRecorded]
    public string Model { get; init; } = "";
    /// <summary>Storage dtype of the frozen matrices and embeddings (fp32 or bf16).</summary>
    [RecordedAs("base_dtype")]
    public ScalarType BaseDtype { get; init; } = ScalarType.Float32;
    /// <summary>Where to compute; null is the CPU.</summary>
    [NotRecorded]
    public Device? Device { get; init; }
    [NotRecorded]
    public required string Task { get; init; }
    /// <summary>The task's folder (lm: a text file, or a folder with train.txt and optionally val.txt).</summary>
    [NotRecorded]
    public required string Data { get; init; }
    [RecordedFlat]
    public SampleSizes Sizes { get; init; } = new();
    /// <summary>Seeds the sample, the order of the batches and torch (LoRA init); it replaces Trainer.Seed.</summary>
    [NotRecorded]
    public long Seed { get; init; }
    public int BatchSize { get; init; } = 8;
    /// <summary>lm: tokens per window, BOS included; sft: the most tokens an example keeps; null is the model's maximum positions.</summary>
    public int? Context { get; init; }
    /// <summary>lm: where dev comes from (<see cref="TextSplit"/>); other tasks take only the default.</summary>
    public TextSplit Split { get; init; }
    /// <summary>sft: the loss on every token, prompts and system turns too, not only on the responses.</summary>
    public bool TrainOnInputs { get; init; }
    /// <summary>sft: what an example longer than <see cref="Context"/> tokens becomes (cut from its end, dropped, or an error).</summary>
    [RecordedWhenSet]
    public SftTruncationMode Truncation { get; init; }
    /// <summary>
    /// sft: pack several examples into each row of <see cref="Context"/> positions (<see cref="SftPacking"/>);
    /// <see cref="BatchSize"/> then counts rows. Attention and positions stay inside each example.
    /// </summary>
    public bool Pack { get; init; }
    /// <summary>
    /// A text of the pretrained model's own domain (stories260K: TinyStories), scored after training as
    /// result.json's "source" (NLL per token): how much of it the fine-tune forgot. Null scores none.
    /// </summary>
    [RecordedWhenSet]
    public string? Source { get; init; }
    /// <summary>Windows of <see cref="Source"/> scored: a fixed sample, the same for every seed.</summary>
    [RecordedWhenSet]
    public int SourceWindows { get; init; } = DefaultSourceWindows;
    public const int DefaultSourceWindows = 200;
    /// <summary>The paper's budget: 5 epochs (Appendix A.1).</summary>
    [RecordedFlat]
    public TrainerOptions Trainer { get; init; } = new() { Epochs = 5 };
    [RecordedFlat]
    public LoraConfig Lora { get; init; } = new();
    /// <summary>The chain; a length left null is the method's (<see cref="TrainerOptions.DefaultChainLength"/>: 3 links for COLA).</summary>
    [RecordedFlat]
    public ChainConfig Chain { get; init; } = new();
    /// <summary>Where result.json and train_log.jsonl go; null writes nothing.</summary>
    [NotRecorded]
    public string? OutDir { get; init; }
    /// <summary>A PEFT LoRA adapter folder merged into the weights before training starts.</summary>
    public string? Adapter { get; init; }
    /// <summary>Also checkpoint every N optimizer steps (0: only at link ends). Needs <see cref="OutDir"/>.</summary>
    [NotRecorded]
    public int CheckpointEvery { get; init; }
    /// <summary>Continue an interrupted run from this checkpoint (same options as that run).</summary>
    [NotRecorded]
    public string? ResumeFrom { get; init; }
    /// <summary>Cancelled to stop after the current step with a checkpoint (<see cref="RunPlumbing.Stop"/>).</summary>
    [NotRecorded]
    public CancellationToken Stop { get; init; }
    /// <summary>Replace a run already in <see cref="OutDir"/> (its log, checkpoint and result); otherwise such a folder is refused.</summary>
    [NotRecorded]
    public bool Overwrite { get; init; }
    /// <summary>A folder for this run's TensorBoard events (per step, at knots, and the dev and test metrics); null writes none.</summary>
    [NotRecorded]
    public string? TensorBoardDir { get; init; }

    /// <summary>The folder checkpoints go to: OUT/checkpoint.</summary>
    public string? CheckpointDir => OutDir is null ? null : Path.Combine(OutDir, Checkpoint.FolderName);

    /// <summary>Every setting checked before anything is loaded; the error names the value.</summary>
    public TrainRecipeOptions Validate()
    {
        PreparedTask.CheckSplit(TaskRegistry.Find(Task), Split);
        Sizes.Validate();
        Trainer.Validate();
        Lora.Validate();
        Trainer.ResolveChain(Chain).Validate();
        if (BatchSize < 1) throw new ArgumentException($"batch size {BatchSize}: must be at least 1");
        if (Context is < 2) throw new ArgumentException($"context {Context}: must be at least 2");
        if (TrainOnInputs && TaskRegistry.Find(Task).Kind != TaskKind.Sft)
            throw new ArgumentException($"train on inputs: only the sft task masks its inputs; {Task} does not");
        if (Pack && TaskRegistry.Find(Task).Kind != TaskKind.Sft)
            throw new ArgumentException($"pack: only the sft task packs its examples; {Task} does not");
        if (Truncation != SftTruncationMode.Cut && TaskRegistry.Find(Task).Kind != TaskKind.Sft)
            throw new ArgumentException($"truncation {IO.EnumNames.Name(Truncation)}: only the sft task truncates its examples; {Task} does not");
        if (SourceWindows < 1) throw new ArgumentException($"source windows {SourceWindows}: must be at least 1");
        if (CheckpointEvery < 0) throw new ArgumentException($"checkpoint every {CheckpointEvery} steps: must be >= 0");
        if (CheckpointEvery > 0 && OutDir is null) throw new ArgumentException("checkpoints need an output folder");
        return this;
    }
}

public sealed class TrainRecipe : IDisposable
{
    readonly PretrainedModel model;
    readonly bool ownsModel;
    readonly TrainRecipeOptions options;
    readonly ChainTrainer trainer;
    readonly ITrainingData data;
    readonly Stopwatch clock;
    readonly PeftAdapter? initialAdapter;
    readonly FolderLock? folderLock;
    Action<StepReport>? onStep;

    public PreparedTask Prepared { get; }
    /// <summary>Optimizer steps the run will take (for progress bars).</summary>
    public int TotalSteps => trainer.Schedule!.TotalSteps;

    TrainRecipe(PretrainedModel model, bool ownsModel, TrainRecipeOptions options, PreparedTask prepared, Stopwatch clock,
        PeftAdapter? initialAdapter, FolderLock? folderLock)
    {
        this.folderLock = folderLock;
        this.model = model;
        this.ownsModel = ownsModel;
        this.options = options;
        this.clock = clock;
        this.initialAdapter = initialAdapter;
        if (options.Pack)
        {
            var capacity = PreparedTask.Context(prepared.Task, options.Context, model.Model.MaxPositions);
            (data, var packing) = prepared.PackedTrainingData(capacity, options.BatchSize, options.Seed, model.Model.Device, model.Tokenizer.PadId);
            prepared = prepared.WithPacking(packing);
        }
        else data = prepared.TrainingData(new PromptEncoder(model.Tokenizer, model.Model.MaxPositions), options.BatchSize, options.Seed, model.Model.Device);
        Prepared = prepared;
        var logPath = options.OutDir is null ? null : Path.Combine(options.OutDir, "train_log.jsonl");
        var plumbing = new RunPlumbing
        {
            LogPath = logPath,
            TensorBoardDir = options.TensorBoardDir,
            CheckpointDir = options.CheckpointDir,
            CheckpointEvery = options.CheckpointEvery,
            Fingerprint = RunFingerprint.Of(options, model.Directory, prepared.Data),
            Stop = options.Stop,
        };
        trainer = new ChainTrainer(model.Model, options.Trainer with { Seed = options.Seed }, options.Lora, options.Chain, plumbing)
        {
            OnStep = r => onStep?.Invoke(r),
        };
        trainer.Setup(data);
    }

    /// <summary>Loads <see cref="TrainRecipeOptions.Model"/> (downloads reported to <paramref name="download"/>), then sets up as below.</summary>
    public static TrainRecipe Setup(TrainRecipeOptions options, IProgress<HubFileProgress>? download = null)
    {
        if (options.Model.Length == 0) throw new ArgumentException("train: no model given (a folder or a Hub id)");
        options.Validate();
        if (options.ResumeFrom is not null) Checkpoint.Locate(options.ResumeFrom);
        var loaded = PretrainedModel.Load(options.Model, options.BaseDtype, options.Device, download);
        try
        {
            return Setup(loaded, options, ownsModel: true);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads and samples the data, builds the batches, injects LoRA and lays out the chain on
    /// <paramref name="model"/>, which the caller keeps and disposes.
    /// </summary>
    public static TrainRecipe Setup(PretrainedModel model, TrainRecipeOptions options) => Setup(model, options, ownsModel: false);

    static TrainRecipe Setup(PretrainedModel model, TrainRecipeOptions options, bool ownsModel)
    {
        var clock = Stopwatch.StartNew();
        options.Validate();
        var task = TaskRegistry.Find(options.Task);
        var resume = options.ResumeFrom is null ? null : Checkpoint.Locate(options.ResumeFrom);
        var chat = new ModelChatTemplate(model.Directory);
        var prepared = PreparedTask.Load(task, options.Data, options.Sizes, options.Seed, model.Tokenizer,
            PreparedTask.Context(task, options.Context, model.Model.MaxPositions), options.Split,
                new SftSettings(chat.Renderer, options.TrainOnInputs, options.Truncation)).WithNote(chat.FallbackNote);
        var folderLock = options.OutDir is null ? null : FolderLock.Acquire(options.OutDir, "train run");
        PeftAdapter? adapter = null;
        try
        {
            if (options.OutDir is not null && resume is null)
            {
                // A checkpoint a killed swap left under its hidden name counts (and would come back at the next save).
                AtomicFolder.Recover(Path.Combine(options.OutDir, Checkpoint.FolderName));
                if (PreviousRun(options.OutDir) is { } previous)
                {
                    if (!options.Overwrite)
                        throw new ArgumentException(
                            $"{options.OutDir} holds a run ({previous}); continue it with --resume {options.OutDir} or replace it with --overwrite");
                    ClearPreviousRun(options.OutDir);
                }
            }
            adapter = options.Adapter is null ? null : PeftAdapter.Load(options.Adapter);
            // Tied in as the chain's first knot: training then starts a fresh chain on W0 + the adapter.
            adapter?.MergeInto(model.Model);
            // Targets left to the family's defaults are named here, so result.json and the fingerprint carry them.
            var resolved = options with
            {
                ResumeFrom = resume,
                Lora = options.Lora.WithTargetsFor(model.Model.ModelType),
                Chain = options.Trainer.ResolveChain(options.Chain),
            };
            return new TrainRecipe(model, ownsModel, resolved, prepared, clock, adapter, folderLock);
        }
        catch
        {
            adapter?.Dispose();
            folderLock?.Dispose();
            throw;
        }
    }

    /// <summary>Sets up, trains, evaluates and writes the outputs in one call.</summary>
    public static TaskRunResult Run(TrainRecipeOptions options, Action<StepReport>? onStep = null,
        IProgress<HubFileProgress>? download = null)
    {
        using var recipe = Setup(options, download);
        return recipe.Run(onStep);
    }

    /// <summary>Trains, evaluates dev and test, and writes result.json when an output folder is set.</summary>
    public TaskRunResult Run(Action<StepReport>? onStep = null)
    {
        this.onStep = onStep;
        TrainingResult training;
        try
        {
            training = trainer.Train(data, options.ResumeFrom);
        }
        catch (TrainingDivergedException e)
        {
            // The record of a diverged run: how far it got and why it stopped; no metrics to report.
            var diverged = new TaskRunResult(Prepared.Task.Name, options.Trainer.Method, options.Seed, model.Directory, Hyperparameters(),
                Prepared.Data, TrainingSummary.Of(e.Partial, options.Trainer.Method == TrainingMethod.Full), null, new Dictionary<string, double>(), e.Partial.TotalFlops,
                clock.Elapsed.TotalSeconds, RunStatus.Diverged, e.Message);
            if (options.OutDir is not null) ResultFile.Write(Path.Combine(options.OutDir, ResultFile.Name), diverged);
            throw;
        }
        var eval = new EvalOptions { Seed = options.Seed };
        var dev = Prepared.Evaluate(model.Model, model.Tokenizer, eval, dev: true);
        var test = Prepared.Evaluate(model.Model, model.Tokenizer, eval)!;
        var source = SourceScore(model, options.Source, options.SourceWindows, options.Context);
        if (options.TensorBoardDir is not null)
        {
            var events = new TensorBoardEvents(options.TensorBoardDir);
            if (dev is not null) events.Metrics("dev", dev.Metrics, training.StepLosses.Count);
            events.Metrics("test", test.Metrics, training.StepLosses.Count);
        }
        var full = options.Trainer.Method == TrainingMethod.Full;
        var result = new TaskRunResult(Prepared.Task.Name, options.Trainer.Method, options.Seed,
            model.Directory, Hyperparameters(), Prepared.Data, TrainingSummary.Of(training, full), dev?.Metrics, test.Metrics,
            training.TotalFlops, clock.Elapsed.TotalSeconds, Source: source);
        if (options.OutDir is not null)
        {
            if (trainer.Adapters is { } adapters) RunArtifacts.SaveChain(options.OutDir, adapters, model.Directory, initialAdapter);
            ResultFile.Write(Path.Combine(options.OutDir, ResultFile.Name), result);
        }
        return result;
    }

    /// <summary>
    /// NLL per token and perplexity of <paramref name="windows"/> windows of <paramref name="source"/> (a fixed
    /// sample, <see cref="TextCorpus.SourceSample"/>) under the model as it is now; null without a source.
    /// </summary>
    public static IReadOnlyDictionary<string, double>? SourceScore(PretrainedModel model, string? source, int windows, int? context)
    {
        if (source is null) return null;
        var sample = TextCorpus.SourceSample(source, model.Tokenizer, TextCorpus.WindowLength(context, model.Model.MaxPositions), windows);
        var score = Perplexity.OfWindows(model.Model, sample);
        return new Dictionary<string, double> { ["nll_per_token"] = score.NllPerToken, ["perplexity"] = score.Perplexity, ["tokens"] = score.Tokens };
    }

    public void Dispose()
    {
        initialAdapter?.Dispose();
        if (ownsModel) model.Dispose();
        folderLock?.Dispose();
    }

    /// <summary>What of an earlier run <paramref name="dir"/> holds (its log, checkpoint or result), or null.</summary>
    /// <summary>--overwrite: nothing of the earlier run may survive beside the new one (its log is truncated when the new one opens it).</summary>
    static void ClearPreviousRun(string dir)
    {
        AtomicFolder.Delete(Path.Combine(dir, Checkpoint.FolderName));
        AtomicFolder.Delete(Path.Combine(dir, RunArtifacts.FolderName));
        File.Delete(Path.Combine(dir, ResultFile.Name));
    }

    static string? PreviousRun(string dir)
    {
        var found = new[] { "train_log.jsonl", Checkpoint.FolderName, ResultFile.Name }
            .Where(n => File.Exists(Path.Combine(dir, n)) || Directory.Exists(Path.Combine(dir, n))).ToList();
        return found.Count == 0 ? null : string.Join(", ", found);
    }

    System.Text.Json.Nodes.JsonObject Hyperparameters() => HyperParameters.Of(options, model.Model, trainer.Schedule!, Prepared.Task.Kind);
}
