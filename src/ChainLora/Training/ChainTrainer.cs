// The training recipe (torchtune style): Setup, then Train runs the chain of links, each link
// one LoRA tuning phase, with a knot between links (paper, Algorithm 1).
//
// Features and the options that control them:
//   method           TrainerOptions.Method: lora (chain of 1), cola (chain of M), full fine-tuning
//   optimizer        TrainerOptions.Optimizer: AdamW (default), SGD (+ momentum), AdaGrad
//   LR schedule      linear decay over the whole budget, TrainerOptions.WarmupRatio,
//                    TrainerOptions.RewarmEachLink restarts warmup + decay per link (ReLoRA style)
//   accumulation     TrainerOptions.GradientAccumulation micro-batches per optimizer step
//   clipping         TrainerOptions.MaxGradNorm (0 = off)
//   determinism      TrainerOptions.Seed seeds torch; the data decides its own order per epoch
//   logging          TrainerOptions.LogPath: JSONL per step {step, link, loss, lr} and knot events
//   bf16 base        the model's frozen matrices may be bf16; LoRA and optimizer state stay fp32
//   memory           TrainerOptions.GradientCheckpointing recomputes each decoder layer in backward
using System.Diagnostics;
using System.Text.Json;
using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Optimizer = TorchSharp.torch.optim.Optimizer;

namespace ChainLora.Training;

public enum TrainingMethod { Lora, Cola, Full }

public enum OptimizerKind { AdamW, Sgd, AdaGrad }

public sealed record TrainerOptions
{
    public TrainingMethod Method { get; init; } = TrainingMethod.Lora;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    public double LearningRate { get; init; } = 1e-4;
    public double WeightDecay { get; init; }
    public double Momentum { get; init; }
    public int Epochs { get; init; } = 1;
    public int GradientAccumulation { get; init; } = 1;
    public double MaxGradNorm { get; init; }
    public double WarmupRatio { get; init; }
    public bool RewarmEachLink { get; init; }
    public long Seed { get; init; }
    public string? LogPath { get; init; }
    /// <summary>Folder for checkpoints (at every link end, and every <see cref="CheckpointEvery"/> steps when positive).</summary>
    public string? CheckpointDir { get; init; }
    public int CheckpointEvery { get; init; }
    /// <summary>
    /// Keep only each decoder layer's input and recompute the layer in backward
    /// (<see cref="CausalLM.GradientCheckpointing"/>): same losses, less activation memory, about a
    /// third more compute. FLOP counts stay those of the model (recomputation is not counted).
    /// </summary>
    public bool GradientCheckpointing { get; init; }

    public TrainerOptions Validate()
    {
        if (!(LearningRate > 0)) throw new ArgumentException($"learning rate {LearningRate}: must be positive");
        if (WeightDecay < 0) throw new ArgumentException($"weight decay {WeightDecay}: must be >= 0");
        if (Momentum is < 0 or >= 1) throw new ArgumentException($"momentum {Momentum}: must be in [0, 1)");
        if (Epochs < 1) throw new ArgumentException($"epochs {Epochs}: must be at least 1");
        if (GradientAccumulation < 1) throw new ArgumentException($"gradient accumulation {GradientAccumulation}: must be at least 1");
        if (MaxGradNorm < 0) throw new ArgumentException($"max grad norm {MaxGradNorm}: must be >= 0 (0 turns clipping off)");
        if (CheckpointEvery < 0) throw new ArgumentException($"checkpoint every {CheckpointEvery}: must be >= 0");
        if (WarmupRatio is < 0 or >= 1) throw new ArgumentException($"warmup ratio {WarmupRatio}: must be in [0, 1)");
        return this;
    }

    public static OptimizerKind ParseOptimizer(string text) => text.ToLowerInvariant() switch
    {
        "adamw" => OptimizerKind.AdamW,
        "sgd" => OptimizerKind.Sgd,
        "adagrad" => OptimizerKind.AdaGrad,
        _ => throw new ArgumentException($"optimizer '{text}': expected adamw, sgd or adagrad"),
    };

    public static TrainingMethod ParseMethod(string text) => text.ToLowerInvariant() switch
    {
        "lora" => TrainingMethod.Lora,
        "cola" => TrainingMethod.Cola,
        "full" => TrainingMethod.Full,
        _ => throw new ArgumentException($"method '{text}': expected lora, cola or full"),
    };
}

/// <summary>What one optimizer step reports.</summary>
public sealed record StepReport(int Step, int TotalSteps, int Link, int Links, double Loss, double LearningRate, TimeSpan Elapsed);

public sealed record LinkResult(int Index, int Rank, double Alpha, int StartStep, int EndStep, IReadOnlyList<double> Losses)
{
    public double MeanLoss => Losses.Count == 0 ? double.NaN : Losses.Average();
}

/// <summary>The outcome of a run; <c>Flops</c> are analytic training FLOPs per link (see <see cref="Training.Flops"/>).</summary>
public sealed record TrainingResult(IReadOnlyList<LinkResult> Links, IReadOnlyList<double> StepLosses, long TrainableParameters,
    long Tokens, TimeSpan Elapsed, TimeSpan KnotTime, IReadOnlyList<double> LinkFlops)
{
    public double TotalFlops => LinkFlops.Sum();

    public double FinalLoss => StepLosses.Count == 0 ? double.NaN : StepLosses[^1];
}

public sealed class ChainTrainer
{
    readonly CausalLM model;
    readonly TrainerOptions options;
    readonly LoraConfig lora;
    readonly ChainConfig chainConfig;
    Optimizer? optimizer;

    /// <summary>The adapters, after <see cref="Setup"/> (null for full fine-tuning).</summary>
    public LoraAdapters? Adapters { get; private set; }
    public ChainSchedule? Schedule { get; private set; }

    /// <summary>Called after every optimizer step (progress bars, early inspection).</summary>
    public Action<StepReport>? OnStep { get; init; }

    public ChainTrainer(CausalLM model, TrainerOptions options, LoraConfig lora, ChainConfig chain)
    {
        this.model = model;
        this.options = options.Validate();
        this.lora = lora.Validate();
        chainConfig = chain.Validate();
        if (options.Method == TrainingMethod.Lora && chain.Length != 1)
            throw new ArgumentException($"method lora is a chain of length 1, got chain length {chain.Length}; use method cola");
        if (options.Method == TrainingMethod.Full && chain.Length != 1)
            throw new ArgumentException("full fine-tuning has no chain: use chain length 1");
        // The recomputation must draw the forward's dropout masks again; only the CPU generator's
        // state can be saved and restored through TorchSharp 0.107.
        if (options.GradientCheckpointing && options.Method != TrainingMethod.Full && lora.Dropout > 0 && model.Device.type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException(
                $"gradient checkpointing with LoRA dropout {lora.Dropout} needs the CPU: on {model.Device} the dropout masks cannot be replayed; use dropout 0");
    }

    /// <summary>Seeds, injects LoRA (or unfreezes everything for full fine-tuning), lays out the chain.</summary>
    public void Setup(ITrainingData data)
    {
        manual_seed(options.Seed);
        model.GradientCheckpointing = options.GradientCheckpointing;
        var stepsPerEpoch = (data.BatchesPerEpoch + options.GradientAccumulation - 1) / options.GradientAccumulation;
        Schedule = ChainSchedule.Create(chainConfig, lora, stepsPerEpoch, options.Epochs);
        if (options.Method == TrainingMethod.Full)
        {
            foreach (var p in model.parameters())
            {
                if (p.dtype != ScalarType.Float32)
                    throw new ArgumentException($"full fine-tuning needs fp32 weights, found {p.dtype}; use --base-dtype fp32");
                p.requires_grad = true;
            }
        }
        else
        {
            var first = Schedule.Links[0];
            Adapters = LoraAdapters.Inject(model, lora with { Rank = first.Rank, Alpha = first.Alpha });
        }
    }

    /// <summary>
    /// Algorithm 1: tune LoRA on each link; between links tie a knot and extend the chain.
    /// With <paramref name="resumeFrom"/> (a checkpoint folder) the run continues exactly where
    /// that checkpoint was taken: weights, LoRA, optimizer, schedule, RNG and data position.
    /// </summary>
    public TrainingResult Train(ITrainingData data, string? resumeFrom = null)
    {
        if (Schedule is null) Setup(data);
        var schedule = Schedule!;
        var run = new RunState { LinkFlops = new double[schedule.Links.Count] };
        var trainable = Trainable();
        var trainableCount = trainable.Sum(p => p.numel());
        optimizer = NewOptimizer(trainable);
        if (resumeFrom is not null)
        {
            run = Checkpoint.Restore(resumeFrom, model, Adapters, schedule, options);
            trainable = Trainable();
            optimizer.Dispose();
            optimizer = NewOptimizer(trainable);
            Checkpoint.RestoreOptimizer(resumeFrom, optimizer);
        }
        using var log = TrainingLog.Open(options.LogPath, run.Step);
        var lr = new LrSchedule(options.LearningRate, options.WarmupRatio, options.RewarmEachLink, schedule);
        var clock = Stopwatch.StartNew();
        var before = TimeSpan.FromSeconds(run.ElapsedSeconds);
        var perToken = new Dictionary<(int Link, int Context), double>();
        model.train();

        var link = schedule.LinkAt(Math.Min(run.Step, schedule.TotalSteps - 1));
        double accumulated = 0;
        var micro = 0;
        var stepClock = Stopwatch.StartNew();
        long stepTokens = 0;
        for (; run.Epoch < options.Epochs && run.Step < schedule.TotalSteps; run.Epoch++, run.BatchInEpoch = 0)
        {
            using var batches = data.Epoch(run.Epoch).Skip(run.BatchInEpoch).GetEnumerator();
            while (run.Step < schedule.TotalSteps)
            {
                using var scope = NewDisposeScope();
                if (!batches.MoveNext()) break;
                run.BatchInEpoch++;
                var batch = batches.Current;
                accumulated += batch.Backward(model, 1.0 / options.GradientAccumulation);
                run.Tokens += batch.Tokens;
                stepTokens += batch.Tokens;
                var key = (link.Index, batch.SequenceLength);
                if (!perToken.TryGetValue(key, out var flopsPerToken))
                    perToken[key] = flopsPerToken = Flops.PerToken(model, batch.SequenceLength).Training;
                run.LinkFlops[link.Index] += flopsPerToken * batch.Tokens;
                if (++micro < options.GradientAccumulation) continue;

                var rate = lr.At(run.Step);
                foreach (var group in optimizer.ParamGroups) group.LearningRate = rate;
                if (options.MaxGradNorm > 0) nn.utils.clip_grad_norm_(trainable, options.MaxGradNorm);
                StepWithoutCollection(optimizer);
                optimizer.zero_grad();
                run.StepLosses.Add(accumulated);
                run.Step++;
                var tokensPerSecond = stepTokens / Math.Max(1e-9, stepClock.Elapsed.TotalSeconds);
                log?.Step(run.Step, link.Index + 1, accumulated, rate, tokensPerSecond);
                OnStep?.Invoke(new StepReport(run.Step, schedule.TotalSteps, link.Index + 1, schedule.Links.Count, accumulated, rate, before + clock.Elapsed));
                accumulated = 0;
                micro = 0;

                var linkEnds = run.Step == link.EndStep && link.Index + 1 < schedule.Links.Count;
                if (linkEnds)
                {
                    var knotClock = Stopwatch.StartNew();
                    link = schedule.Links[link.Index + 1];
                    trainable = TieKnotAndExtend(link);
                    run.KnotSeconds += knotClock.Elapsed.TotalSeconds;
                    log?.Knot(run.Step, link.Index + 1, link.Rank);
                }
                if (options.CheckpointDir is not null && (linkEnds || (options.CheckpointEvery > 0 && run.Step % options.CheckpointEvery == 0)))
                {
                    run.ElapsedSeconds = (before + clock.Elapsed).TotalSeconds;
                    log?.Flush();
                    Checkpoint.Save(options.CheckpointDir, run, model, Adapters, optimizer);
                }
                stepClock.Restart();
                stepTokens = 0;
            }
            // A partial accumulation at the end of an epoch is dropped, like a drop_last loader.
            if (micro > 0) { optimizer.zero_grad(); accumulated = 0; micro = 0; }
        }
        model.eval();
        var links = schedule.Links.Select(l => new LinkResult(l.Index, l.Rank, l.Alpha, l.StartStep, l.EndStep,
            run.StepLosses.Skip(l.StartStep).Take(l.Steps).ToList())).ToList();
        return new TrainingResult(links, run.StepLosses, trainableCount, run.Tokens, before + clock.Elapsed,
            TimeSpan.FromSeconds(run.KnotSeconds), run.LinkFlops);
    }

    /// <summary>Tie a knot, extend the chain at the next link's rank, and start a fresh optimizer.</summary>
    List<Parameter> TieKnotAndExtend(Link next)
    {
        Adapters!.TieKnot();
        Adapters.ExtendChain(next.Rank, next.Alpha);
        optimizer!.Dispose();
        var trainable = Trainable();
        optimizer = NewOptimizer(trainable);
        return trainable;
    }

    /// <summary>
    /// optimizer.step() with the garbage collector held off. TorchSharp's optimizers pass
    /// temporary Scalars (e.g. 1 - beta2) to native calls without keeping them alive, so a
    /// collection in the middle of a step can finalize one while libtorch reads it (seen as a
    /// rare "toFloat" failure inside AdamW's addcmul_). A step allocates a few hundred bytes of
    /// managed objects per parameter, far below the region's budget.
    /// </summary>
    static void StepWithoutCollection(Optimizer optimizer)
    {
        var region = false;
        try { region = GC.TryStartNoGCRegion(16 << 20); }
        catch (InvalidOperationException) { }   // already in a region (a caller's): it protects us too
        try
        {
            optimizer.step();
        }
        finally
        {
            if (region && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }

    List<Parameter> Trainable() => model.parameters().Where(p => p.requires_grad).ToList();

    Optimizer NewOptimizer(List<Parameter> parameters) => options.Optimizer switch
    {
        OptimizerKind.AdamW => optim.AdamW(parameters, options.LearningRate, weight_decay: options.WeightDecay),
        OptimizerKind.Sgd => optim.SGD(parameters, options.LearningRate, momentum: options.Momentum, weight_decay: options.WeightDecay),
        OptimizerKind.AdaGrad => optim.Adagrad(parameters, options.LearningRate, weight_decay: options.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(options.Optimizer)),
    };

    /// <summary>The optimizer in use (exposed for tests of fresh state after a knot).</summary>
    public Optimizer? CurrentOptimizer => optimizer;
}
