// Algorithm 1 of the paper: Setup lays out the chain, then Train runs it, each link one LoRA
// tuning phase (TrainLink), with a knot between links (TieKnotAndExtend). The bookkeeping lives in
// small collaborators: MicroBatchFeed (data position, accumulation), FlopMeter, TrainingLog,
// Checkpoint (exact resume), LrSchedule.
//
// Features and the options that control them:
//   method           TrainerOptions.Method: lora (chain of 1), cola (chain of M), full fine-tuning
//   optimizer        TrainerOptions.Optimizer: AdamW (default), SGD (+ momentum), AdaGrad
//   LR schedule      linear decay over the whole budget, TrainerOptions.WarmupRatio,
//                    TrainerOptions.RewarmEachLink restarts warmup + decay per link,
//                    TrainerOptions.RestartWarmupRatio re-warms after each knot (ReLoRA's jagged schedule)
//   chain variants   TrainerOptions.GradientInit, .FreezeA (RAC-LoRA), .OptimizerPruneFraction (ReLoRA)
//   delta spectra    TrainerOptions.RecordDeltaSpectra: the accumulated delta W's singular values at every knot
//   accumulation     TrainerOptions.GradientAccumulation micro-batches per optimizer step; those left
//                    over at an epoch's end are skipped (drop_last), so the schedule's steps all happen
//   clipping         TrainerOptions.MaxGradNorm (0 = off)
//   determinism      TrainerOptions.Seed seeds torch; the data decides its own order per epoch
//   logging          TrainerOptions.LogPath: JSONL per step {step, link, loss, lr} and knot events
//   bf16 base        the model's frozen matrices may be bf16; LoRA and optimizer state stay fp32
//   activations      TrainerOptions.Activations: fp32 residual stream or bf16 activations (auto: by device)
//   memory           TrainerOptions.GradientCheckpointing recomputes each decoder layer in backward;
//                    adapters, gradients and optimizer state are checked against the budget in Setup
using System.Diagnostics;
using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Optimizer = TorchSharp.torch.optim.Optimizer;

namespace ChainLora.Training;

public sealed class ChainTrainer
{
    readonly CausalLM model;
    readonly TrainerOptions options;
    readonly LoraConfig lora;
    readonly ChainConfig chainConfig;
    Optimizer? optimizer;
    List<Parameter> trainable = [];
    LrSchedule? lr;
    ChainSchedule? layout;

    /// <summary>The adapters, after <see cref="Setup"/> (null for full fine-tuning).</summary>
    public LoraAdapters? Adapters { get; private set; }
    public ChainSchedule? Schedule { get; private set; }

    /// <summary>Called after every optimizer step (progress bars, early inspection).</summary>
    public Action<StepReport>? OnStep { get; init; }

    /// <summary>
    /// Called when a link's A and B are new (after the injection in <see cref="Setup"/>, and after each knot's
    /// ExtendChain), before the link's optimizer is made; it may overwrite them (<see cref="LoraAdapters.LoadFactors"/>),
    /// e.g. with a reference's initial values. A resumed run then restores the checkpoint's values over them.
    /// </summary>
    public Action<Link, LoraAdapters>? OnLinkStart { get; init; }

    public ChainTrainer(CausalLM model, TrainerOptions options, LoraConfig lora, ChainConfig chain)
    {
        if (options.Variant != ColaVariant.Paper && options.Method != TrainingMethod.Cola)
            throw new ArgumentException($"cola variant {IO.EnumNames.Name(options.Variant)} needs method cola");
        (options, chain) = ColaVariants.Apply(options.Variant, options, chain);
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
        if (options.GradientInit && (options.Method != TrainingMethod.Cola || chain.Auto is not null || options.GradientCheckpointing))
            throw new ArgumentException("gradient init starts each new link of a cola chain with fixed knots, without gradient checkpointing");
        if ((options.FreezeA || options.OptimizerPruneFraction > 0 || options.RestartWarmupRatio > 0) && options.Method != TrainingMethod.Cola)
            throw new ArgumentException("a frozen A, optimizer pruning and a restart warmup are chain variants: they need method cola");
        // The kept optimizer's moments must fit the next link's A and B.
        if (options.OptimizerPruneFraction > 0 && chain.Ranks is { } linkRanks && linkRanks.Distinct().Count() > 1)
            throw new ArgumentException($"optimizer pruning keeps one optimizer across knots, so every link needs the same rank; got ranks {string.Join(",", linkRanks)}");
        if (options.GradientCheckpointing && options.Method != TrainingMethod.Full && lora.Dropout > 0 && model.Device.type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException(
                $"gradient checkpointing with LoRA dropout {lora.Dropout} needs the CPU: on {model.Device} the dropout masks cannot be replayed; use dropout 0");
    }

    /// <summary>Seeds, injects LoRA (or unfreezes everything for full fine-tuning), lays out the chain.</summary>
    public void Setup(ITrainingData data)
    {
        manual_seed(options.Seed);
        model.GradientCheckpointing = options.GradientCheckpointing;
        model.ActivationDtype = ActivationPrecisions.Resolve(options.Activations, model);
        var stepsPerEpoch = MicroBatchFeed.StepsPerEpoch(data, options.GradientAccumulation);
        if (stepsPerEpoch == 0)
            throw new ArgumentException(
                $"gradient accumulation {options.GradientAccumulation} needs at least that many micro-batches per epoch; the data has {data.BatchesPerEpoch}");
        Schedule = layout = ChainSchedule.Create(chainConfig, lora, stepsPerEpoch, options.Epochs);
        CheckTrainingMemory();
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
            if (options.FreezeA) Adapters.FreezeA();
            OnLinkStart?.Invoke(first, Adapters);
        }
    }

    /// <summary>
    /// What training adds to the loaded model (<see cref="TrainingMemory"/>) must fit the memory
    /// budget before any of it is allocated: a huge rank is refused here, not by the OOM killer.
    /// </summary>
    void CheckTrainingMemory()
    {
        var state = TrainingMemory.StateTensors(options);
        var optimizerName = IO.EnumNames.Name(options.Optimizer);
        var onHost = model.Device.type == TorchSharp.DeviceType.CPU;
        if (options.Method == TrainingMethod.Full)
        {
            if (!onHost) return;
            var count = model.parameters().Sum(p => p.numel());
            MemoryBudget.Require(TrainingMemory.FullBytes(count, state), $"full fine-tuning (gradients and {optimizerName} state of {count} parameters)",
                "use LoRA or a smaller model");
            return;
        }
        var ranks = Enumerable.Range(0, chainConfig.Length).Select(i => chainConfig.RankOf(i, lora.Rank)).ToList();
        var (layers, perRank, biases) = LoraAdapters.Footprint(model, lora);
        var rankText = ranks.Distinct().Count() == 1 ? $"rank {ranks[0]}" : $"ranks {string.Join(",", ranks)}";
        MemoryBudget.Require(TrainingMemory.LoraBytes(perRank, biases, ranks, state, onHost),
            $"LoRA at {rankText} on {layers} layers (adapters, gradients, {optimizerName} state{(ranks.Count > 1 ? ", tied links" : "")})",
            "use a smaller --rank or --ranks, fewer --targets or a shorter chain");
    }

    /// <summary>
    /// Algorithm 1: tune LoRA on each link; between links tie a knot and extend the chain.
    /// With <paramref name="resumeFrom"/> (a checkpoint folder) the run continues exactly where
    /// that checkpoint was taken: weights, LoRA, optimizer, schedule, RNG and data position.
    /// </summary>
    public TrainingResult Train(ITrainingData data, string? resumeFrom = null)
    {
        if (Schedule is null) Setup(data);
        using var run = Begin(data, resumeFrom);
        model.train();
        // Automatic knots end a link early by cutting the schedule: read the links afresh each time.
        for (var link = Schedule!.LinkAt(Math.Min(run.State.Step, Schedule.TotalSteps - 1)); ; link = Schedule.Links[link.Index + 1])
        {
            if (link.EndStep > run.State.Step) link = TrainLink(link, run);
            if (link.Index + 1 == Schedule.Links.Count || run.State.Step < link.EndStep) break;
            TieKnotAndExtend(Schedule.Links[link.Index + 1], run);
        }
        if (options.RecordDeltaSpectra && Adapters is not null && run.State.DeltaEffectiveRanks.Count < Schedule.Links.Count)
        {
            var spectrum = DeltaSpectrum.Of(Adapters);
            run.State.DeltaEffectiveRanks.Add(spectrum.Average(l => l.EffectiveRank));
            run.Log?.Spectrum(run.State.Step, Schedule.Links.Count, spectrum);
        }
        model.eval();
        return run.Result(Schedule);
    }

    /// <summary>
    /// Tune LoRA: optimizer steps until the link's end (or the data's); returns the link as it ended
    /// (automatic knots may end it early).
    /// </summary>
    Link TrainLink(Link link, RunInProgress run)
    {
        var links = Schedule!.IsAutomatic ? Schedule.MaxLinks : Schedule.Links.Count;
        while (run.State.Step < link.EndStep && run.Feed.StartStep())
        {
            var beforeKnot = run.State.Step + 1 == link.EndStep && link.Index + 1 < Schedule.Links.Count;
            var loss = AccumulateGradients(link, run, captureWeightGradients: beforeKnot && options.GradientInit);
            var rate = lr!.At(run.State.Step);
            var gradientNorm = ClipGradients();
            if (!double.IsFinite(loss) || !double.IsFinite(gradientNorm))
            {
                optimizer!.zero_grad();
                throw Diverged(run, run.State.Step + 1, link.Index + 1,
                    double.IsFinite(loss) ? $"the gradient norm is {gradientNorm}" : $"the loss is {loss}");
            }
            OptimizerStep(rate);
            run.State.StepLosses.Add(loss);
            run.State.Step++;
            FaultInjection.Point("step");
            run.Log?.Step(run.State.Step, link.Index + 1, loss, rate, run.StepTokensPerSecond(), gradientNorm);
            OnStep?.Invoke(new StepReport(run.State.Step, Schedule.TotalSteps, link.Index + 1, links, loss, rate, run.Elapsed));
            if (chainConfig.Auto?.Decide(run.State.StepLosses, link, run.State.Step, Schedule) is { } reason)
            {
                CutChain(run.State.Step, reason);
                run.State.AutoKnots.Add(new AutoKnot(run.State.Step, reason));
                return Schedule.Links[link.Index];
            }
            var knotFollows = run.State.Step == link.EndStep && link.Index + 1 < Schedule.Links.Count;
            var saved = !knotFollows && options.CheckpointEvery > 0 && run.State.Step % options.CheckpointEvery == 0;
            if (saved) SaveCheckpoint(run);
            if (options.Stop.IsCancellationRequested) Stop(run, knotFollows ? Schedule.Links[link.Index + 1] : null, checkpointed: saved);
        }
        return link;
    }

    /// <summary>Ends the current link at <paramref name="step"/> (automatic knots); the LR schedule follows the new layout.</summary>
    void CutChain(int step, string reason)
    {
        Schedule = Schedule!.CutAt(step, reason);
        lr = new LrSchedule(options.LearningRate, options.WarmupRatio, options.RewarmEachLink, Schedule, options.RestartWarmupRatio);
    }

    /// <summary>
    /// Tie a knot, extend the chain at the next link's rank, start a fresh optimizer (ReLoRA: keep it,
    /// pruned); then checkpoint.
    /// </summary>
    void TieKnotAndExtend(Link next, RunInProgress run)
    {
        var clock = Stopwatch.StartNew();
        var finished = next.Index - 1;
        try
        {
            Adapters!.TieKnot();
        }
        catch (KnotRefusedException e)
        {
            throw Diverged(run, run.State.Step, next.Index, e.Message);
        }
        run.AddFlops(finished, Flops.KnotMerge(Adapters));
        // What the chain has built so far: every tied link, the live one now zero (analysis, not counted as training).
        var spectrum = options.RecordDeltaSpectra ? DeltaSpectrum.Of(Adapters) : null;
        if (spectrum is not null) run.State.DeltaEffectiveRanks.Add(spectrum.Average(l => l.EffectiveRank));
        var keepOptimizer = options.OptimizerPruneFraction > 0;
        // The old link's optimizer state goes before the new link is allocated, so a knot never holds
        // both (the peak TrainingMemory counts). ReLoRA keeps it, pruned: the parameters stay the same
        // tensors, at the same rank, and only their values are re-initialised.
        if (keepOptimizer) OptimizerPruning.Prune(optimizer!, options.OptimizerPruneFraction);
        else optimizer!.Dispose();
        Adapters.ExtendChain(next.Rank, next.Alpha);
        if (options.GradientInit) InitializeFromWeightGradients(run, finished);
        if (options.FreezeA) Adapters.FreezeA();
        OnLinkStart?.Invoke(next, Adapters);
        if (!keepOptimizer)
        {
            trainable = Trainable();
            optimizer = NewOptimizer(trainable);
        }
        run.State.KnotSeconds += clock.Elapsed.TotalSeconds;
        run.Log?.Knot(run.State.Step, next.Index + 1, next.Rank, next.Reason, spectrum);
        SaveCheckpoint(run);
    }

    long tokensWithinBudget;
    bool? onCpu;

    /// <summary>The first micro-batch of each larger size must leave room for its activations (host memory only).</summary>
    void CheckActivationMemory(TrainingBatch batch)
    {
        onCpu ??= model.Device.type == TorchSharp.DeviceType.CPU;
        if (batch.Tokens <= tokensWithinBudget || onCpu == false) return;
        MemoryBudget.Require(ParameterCount.ActivationBytesLowerBound(batch.Tokens, model),
            $"a micro-batch of {batch.Tokens} tokens (the activations backward keeps, at least)");
        tokensWithinBudget = batch.Tokens;
    }

    /// <summary>
    /// The gradients of one optimizer step, summed over its micro-batches; returns the step's loss.
    /// With <paramref name="captureWeightGradients"/> the adapted layers' frozen weights also collect
    /// their gradient (for <see cref="TrainerOptions.GradientInit"/>); the optimizer never sees them.
    /// </summary>
    double AccumulateGradients(Link link, RunInProgress run, bool captureWeightGradients = false)
    {
        if (captureWeightGradients)
            foreach (var layer in Adapters!.Layers.Values) layer.Base.Weight.requires_grad = true;
        var micro = options.GradientAccumulation;
        double loss = 0;
        for (var i = 0; i < micro; i++)
        {
            using var scope = NewDisposeScope();
            var batch = run.Feed.Next();
            CheckActivationMemory(batch);
            loss += batch.Backward(model, 1.0 / micro);
            FaultInjection.Point("backward");
            run.CountTokens(link.Index, batch);
            // The frozen weights' gradients are computed too on this step (2 in out per token per layer).
            if (captureWeightGradients) run.AddFlops(link.Index, Flops.FrozenWeightGradients(Adapters!) * batch.Tokens);
        }
        return loss;
    }

    /// <summary>
    /// A of every new link along the top right singular vectors of its layer's weight gradient G (out, in)
    /// captured at the link's last step: with B = 0 the first update of B is then along -U_r S_r, so B A
    /// starts in the span of the best rank-r descent direction (Algorithm 2's oracle). Rows keep the
    /// norm of the random init they replace. The SVDs are charged to <paramref name="link"/>, the link that ended.
    /// </summary>
    void InitializeFromWeightGradients(RunInProgress run, int link)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var layer in Adapters!.Layers.Values)
        {
            run.AddFlops(link, Flops.ThinSvd(layer.Base.OutFeatures, layer.Base.InFeatures));
            var weight = layer.Base.Weight;
            var gradient = weight.grad ?? throw new InvalidOperationException("gradient init: no weight gradient was captured before the knot");
            var rank = layer.Rank;
            var (_, _, vh) = linalg.svd(gradient.to(ScalarType.Float32), fullMatrices: false);
            var rowNorm = layer.A.norm().item<float>() / Math.Sqrt(rank);
            layer.A.copy_(vh.narrow(0, 0, rank).mul(rowNorm));
        }
        ReleaseWeightGradients();
    }

    /// <summary>The frozen weights stop collecting gradients and drop the one captured for gradient init.</summary>
    void ReleaseWeightGradients()
    {
        foreach (var layer in Adapters?.Layers.Values ?? [])
        {
            layer.Base.Weight.grad = null;
            layer.Base.Weight.requires_grad = false;
        }
    }

    /// <summary>Clips the gradients to MaxGradNorm (when set) and returns their norm before clipping.</summary>
    double ClipGradients()
    {
        using var scope = NewDisposeScope();
        // An infinite bound clips nothing (the scale is clamped to 1) and still measures the norm.
        return nn.utils.clip_grad_norm_(trainable, options.MaxGradNorm > 0 ? options.MaxGradNorm : double.PositiveInfinity);
    }

    void OptimizerStep(double rate)
    {
        using var scope = NewDisposeScope();
        foreach (var group in optimizer!.ParamGroups) group.LearningRate = rate;
        StepWithoutCollection(optimizer);
        optimizer.zero_grad();
    }

    /// <summary>
    /// A requested stop between steps: the state after the last whole step is checkpointed. A knot
    /// that is due (<paramref name="next"/>) is tied first, so the checkpoint resumes into the next link.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    void Stop(RunInProgress run, Link? next, bool checkpointed)
    {
        if (next is not null) TieKnotAndExtend(next, run);  // saves the checkpoint itself
        else if (!checkpointed) SaveCheckpoint(run);
        model.eval();
        throw new TrainingStoppedException(run.State.Step, options.CheckpointDir);
    }

    /// <summary>The divergence at <paramref name="step"/>, with the run so far.</summary>
    TrainingDivergedException Diverged(RunInProgress run, int step, int link, string reason)
    {
        ReleaseWeightGradients();
        model.eval();
        return new TrainingDivergedException(step, link, reason, run.Result(Schedule!));
    }

    void SaveCheckpoint(RunInProgress run)
    {
        if (options.CheckpointDir is null) return;
        run.State.ElapsedSeconds = run.Elapsed.TotalSeconds;
        run.Log?.Flush();
        Checkpoint.Save(options.CheckpointDir, run.State, model, Adapters, optimizer!);
    }

    /// <summary>A fresh run, or one restored exactly from a checkpoint, with its optimizer, log, data feed and LR schedule.</summary>
    RunInProgress Begin(ITrainingData data, string? resumeFrom)
    {
        // A run starts from the planned layout; automatic knots cut it again as they are (re)placed.
        var schedule = Schedule = layout!;
        lr = new LrSchedule(options.LearningRate, options.WarmupRatio, options.RewarmEachLink, schedule, options.RestartWarmupRatio);
        var state = new RunState { LinkFlops = new double[schedule.MaxLinks], Fingerprint = new(options.Fingerprint ?? new Dictionary<string, string>()) };
        trainable = Trainable();
        var trainableCount = trainable.Sum(p => p.numel());
        optimizer?.Dispose();
        optimizer = NewOptimizer(trainable);
        if (resumeFrom is not null)
        {
            state = Checkpoint.Restore(resumeFrom, model, Adapters, schedule, options);
            state.Fingerprint = new(options.Fingerprint ?? new Dictionary<string, string>());
            var expected = state.Epoch * MicroBatchFeed.StepsPerEpoch(data, options.GradientAccumulation) + state.BatchInEpoch / options.GradientAccumulation;
            if (state.Step != expected)
                throw new InvalidDataException(
                    $"{resumeFrom}: step {state.Step} does not match epoch {state.Epoch}, micro-batch {state.BatchInEpoch} (expected step {expected}); same data and options as the interrupted run?");
            foreach (var knot in state.AutoKnots) CutChain(knot.Step, knot.Reason);
            trainable = Trainable();
            optimizer.Dispose();
            optimizer = NewOptimizer(trainable);
            Checkpoint.RestoreOptimizer(resumeFrom, optimizer, state.Step);
        }
        return new RunInProgress(state, trainableCount, TrainingLog.Open(options.LogPath, state.Step, options.TensorBoardDir),
            new MicroBatchFeed(data, options.GradientAccumulation, options.Epochs, state), new FlopMeter(model, state.LinkFlops));
    }

    /// <summary>One call of <see cref="Train"/>: the run's state and the collaborators that keep its books.</summary>
    sealed class RunInProgress(RunState state, long trainableCount, TrainingLog? log, MicroBatchFeed feed, FlopMeter flops) : IDisposable
    {
        readonly Stopwatch clock = Stopwatch.StartNew();
        readonly TimeSpan before = TimeSpan.FromSeconds(state.ElapsedSeconds);
        readonly Stopwatch stepClock = Stopwatch.StartNew();
        long stepTokens;

        public RunState State => state;
        public TrainingLog? Log => log;
        public MicroBatchFeed Feed => feed;
        public TimeSpan Elapsed => before + clock.Elapsed;

        public void AddFlops(int link, double amount) => flops.AddOnce(link, amount);

        public void CountTokens(int link, TrainingBatch batch)
        {
            state.Tokens += batch.Tokens;
            stepTokens += batch.Tokens;
            flops.Add(link, batch);
        }

        /// <summary>Tokens per second since the previous call (one optimizer step, knots and checkpoints aside).</summary>
        public double StepTokensPerSecond()
        {
            var rate = stepTokens / Math.Max(1e-9, stepClock.Elapsed.TotalSeconds);
            stepTokens = 0;
            stepClock.Restart();
            return rate;
        }

        public TrainingResult Result(ChainSchedule schedule)
        {
            var links = schedule.Links.Select(l => new LinkResult(l.Index, l.Rank, l.Alpha, l.StartStep, l.EndStep,
                state.StepLosses.Skip(l.StartStep).Take(l.Steps).ToList(), l.Reason,
                l.Index < state.DeltaEffectiveRanks.Count ? state.DeltaEffectiveRanks[l.Index] : null)).ToList();
            return new TrainingResult(links, state.StepLosses, trainableCount, state.Tokens, Elapsed,
                TimeSpan.FromSeconds(state.KnotSeconds), state.LinkFlops.Take(links.Count).ToList());
        }

        public void Dispose()
        {
            feed.Dispose();
            log?.Dispose();
        }
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
