// Fine-tune on a task and score it (torchtune-style recipe: Setup, then Run = train, evaluate, save).
//
// Features and the options that control them:
//   task and data     TaskRunOptions.Task, .Data; sampling by .Sizes and .Seed (Sampling)
//   method            .Trainer.Method: lora, cola (chain of .Chain.Length links), full
//   objective         by task kind (TaskTrainingData): classification over candidates, or LM loss
//                     on the answer; lm: LM loss on text windows
//   optimizer, LR     .Trainer (AdamW default, linear decay, warmup ratio, clipping, accumulation)
//   LoRA              .Lora (rank, alpha, dropout, targets, bias), ranks per link .Chain.Ranks
//   batch size        .BatchSize examples (lm: windows) per micro-batch
//   start from        .Adapter: a PEFT LoRA adapter merged into the weights before training
//   outputs           .OutDir: result.json (written atomically), train_log.jsonl (per step),
//                     the trained chain in chain/ (RunArtifacts; LoRA and COLA) for `chainlora export`,
//                     and checkpoint/ at every link end and every .CheckpointEvery steps
//   resume            .ResumeFrom: a checkpoint folder (or a run folder holding checkpoint/)
using System.Diagnostics;
using ChainLora.Chain;
using ChainLora.Export;
using ChainLora.Lora;
using ChainLora.Loading;
using ChainLora.Training;

namespace ChainLora.Tasks;

public sealed record TaskRunOptions
{
    public required string Task { get; init; }
    /// <summary>The task's folder (lm: a text file, or a folder with train.txt and optionally val.txt).</summary>
    public required string Data { get; init; }
    public SampleSizes Sizes { get; init; } = new();
    /// <summary>Seeds the sample, the order of the batches and torch (LoRA init); it replaces Trainer.Seed.</summary>
    public long Seed { get; init; }
    public int BatchSize { get; init; } = 8;
    /// <summary>The paper's budget: 5 epochs (Appendix A.1).</summary>
    public TrainerOptions Trainer { get; init; } = new() { Epochs = 5 };
    public LoraConfig Lora { get; init; } = new();
    public ChainConfig Chain { get; init; } = new();
    /// <summary>Where result.json and train_log.jsonl go; null writes nothing.</summary>
    public string? OutDir { get; init; }
    /// <summary>For the record only: the storage dtype the model was loaded with.</summary>
    public string BaseDtype { get; init; } = "fp32";
    /// <summary>A PEFT LoRA adapter folder merged into the weights before training starts.</summary>
    public string? Adapter { get; init; }
    /// <summary>Also checkpoint every N optimizer steps (0: only at link ends). Needs <see cref="OutDir"/>.</summary>
    public int CheckpointEvery { get; init; }
    /// <summary>Continue an interrupted run from this checkpoint (same options as that run).</summary>
    public string? ResumeFrom { get; init; }

    /// <summary>The folder checkpoints go to: OUT/checkpoint.</summary>
    public string? CheckpointDir => OutDir is null ? null : Path.Combine(OutDir, Checkpoint.FolderName);
}

public sealed class TaskRecipe : IDisposable
{
    readonly PretrainedModel model;
    readonly TaskRunOptions options;
    readonly ChainTrainer trainer;
    readonly ITrainingData data;
    readonly Stopwatch clock;
    readonly PeftAdapter? initialAdapter;
    Action<StepReport>? onStep;

    public PreparedTask Prepared { get; }
    /// <summary>Optimizer steps the run will take (for progress bars).</summary>
    public int TotalSteps => trainer.Schedule!.TotalSteps;

    TaskRecipe(PretrainedModel model, TaskRunOptions options, PreparedTask prepared, Stopwatch clock, PeftAdapter? initialAdapter)
    {
        this.model = model;
        this.options = options;
        this.clock = clock;
        this.initialAdapter = initialAdapter;
        Prepared = prepared;
        var encoder = new PromptEncoder(model.Tokenizer, model.Model.MaxPositions);
        data = prepared.TrainingData(encoder, options.BatchSize, options.Seed, model.Model.Device);
        var logPath = options.OutDir is null ? null : Path.Combine(options.OutDir, "train_log.jsonl");
        var trainerOptions = options.Trainer with
        {
            Seed = options.Seed, LogPath = logPath, CheckpointDir = options.CheckpointDir, CheckpointEvery = options.CheckpointEvery,
        };
        trainer = new ChainTrainer(model.Model, trainerOptions, options.Lora, options.Chain)
        {
            OnStep = r => onStep?.Invoke(r),
        };
        trainer.Setup(data);
    }

    /// <summary>Reads and samples the data, builds the batches, injects LoRA and lays out the chain.</summary>
    public static TaskRecipe Setup(PretrainedModel model, TaskRunOptions options)
    {
        var clock = Stopwatch.StartNew();
        var task = TaskRegistry.Find(options.Task);
        if (options.CheckpointEvery < 0) throw new ArgumentException($"checkpoint every {options.CheckpointEvery} steps: must be >= 0");
        if (options.CheckpointEvery > 0 && options.OutDir is null) throw new ArgumentException("checkpoints need an output folder");
        var resume = options.ResumeFrom is null ? null : Checkpoint.Locate(options.ResumeFrom);
        var prepared = PreparedTask.Load(task, options.Data, options.Sizes, options.Seed, model.Tokenizer, model.Model.MaxPositions);
        var adapter = options.Adapter is null ? null : PeftAdapter.Load(options.Adapter);
        try
        {
            // Tied in as the chain's first knot: training then starts a fresh chain on W0 + the adapter.
            adapter?.MergeInto(model.Model);
            if (options.OutDir is not null) Directory.CreateDirectory(options.OutDir);
            return new TaskRecipe(model, options with { ResumeFrom = resume }, prepared, clock, adapter);
        }
        catch
        {
            adapter?.Dispose();
            throw;
        }
    }

    /// <summary>Trains, evaluates dev and test, and writes result.json when an output folder is set.</summary>
    public TaskRunResult Run(Action<StepReport>? onStep = null)
    {
        this.onStep = onStep;
        var training = trainer.Train(data, options.ResumeFrom);
        var eval = new EvalOptions { Seed = options.Seed };
        var dev = Prepared.Evaluate(model.Model, model.Tokenizer, eval, dev: true);
        var test = Prepared.Evaluate(model.Model, model.Tokenizer, eval)!;
        var full = options.Trainer.Method == TrainingMethod.Full;
        var result = new TaskRunResult(Prepared.Task.Name, options.Trainer.Method.ToString().ToLowerInvariant(), options.Seed,
            model.Directory, Hyperparameters(), Prepared.Data, TrainingSummary.Of(training, full), dev?.Metrics, test.Metrics,
            training.TotalFlops, clock.Elapsed.TotalSeconds);
        if (options.OutDir is not null)
        {
            if (trainer.Adapters is { } adapters) RunArtifacts.SaveChain(options.OutDir, adapters, model.Directory, initialAdapter);
            ResultFile.Write(Path.Combine(options.OutDir, "result.json"), result);
        }
        return result;
    }

    public void Dispose() => initialAdapter?.Dispose();

    HyperParameters Hyperparameters()
    {
        var t = options.Trainer;
        var links = trainer.Schedule!.Links;
        var full = t.Method == TrainingMethod.Full;
        return new(t.Epochs, t.LearningRate, options.BatchSize, t.GradientAccumulation, t.Optimizer.ToString().ToLowerInvariant(),
            t.WeightDecay, t.Momentum, t.WarmupRatio, t.MaxGradNorm, links.Count,
            full ? null : links.Select(l => l.Rank).ToList(), full ? null : links.Select(l => l.Alpha).ToList(),
            full ? null : options.Lora.Dropout, full ? null : options.Lora.TargetModules,
            full ? null : BiasName(options.Lora.Bias), options.Sizes.Train, options.Sizes.Dev, options.Sizes.Eval,
            options.BaseDtype, model.Model.Device.ToString(),
            options.Adapter is null ? null : Path.GetFullPath(options.Adapter), t.GradientCheckpointing);
    }

    static string BiasName(LoraBias bias) => bias switch
    {
        LoraBias.All => "all",
        LoraBias.LoraOnly => "lora_only",
        _ => "none",
    };
}
