// Algorithm 1 of the paper (Chain of LoRA), by its line numbers:
//   line 2           Setup: LoRA beside each target weight, A_0 random and B_0 = 0 (LoraAdapters.Inject)
//   line 3           Train: foreach link of the chain (ChainSchedule, laid out by Setup)
//   lines 4, 9, 10   TrainLink: optimizer steps, each on a minibatch (MicroBatchFeed), forward and
//                    backward with LoRA, then an update of A and B only
//   line 5           NextLink: the step that ends a link, when another follows, is a knot
//   line 6           TieKnot: W <- W + (alpha/r) B A
//   line 7           ExtendChain: fresh A, B = 0, fresh optimizer state
// The bookkeeping lives in small collaborators: MicroBatchFeed (data position, accumulation),
// FlopMeter, TrainingLog, Checkpoint (exact resume), LrSchedule, RunInProgress (one call's books).
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
//   logging          RunPlumbing.LogPath: JSONL per step {step, link, loss, lr} and knot events
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
    readonly RunPlumbing plumbing;
    readonly LoraConfig lora;
    readonly ChainConfig chainConfig;
    Optimizer? optimizer;
    List<Parameter> trainable = [];
    LrSchedule? learningRateSchedule;

    /// <summary>The adapters, after <see cref="Setup"/> (null for full fine-tuning).</summary>
    public LoraAdapters? Adapters { get; private set; }
    /// <summary>
    /// The chain, after <see cref="Setup"/>: as laid out, then as automatic knots cut it during
    /// <see cref="Train"/>.
    /// </summary>
    public ChainSchedule? Schedule { get; private set; }

    /// <summary>Called after every optimizer step (progress bars, early inspection).</summary>
    public Action<StepReport>? OnStep { get; init; }

    /// <summary>
    /// Called when a link's A and B are new (after the injection in <see cref="Setup"/>, and after each knot's
    /// ExtendChain), before the link's optimizer is made; it may overwrite them (<see cref="LoraAdapters.LoadFactors"/>),
    /// e.g. with a reference's initial values. A resumed run then restores the checkpoint's values over them.
    /// </summary>
    public Action<Link, LoraAdapters>? OnLinkStart { get; init; }

    /// <param name="plumbing">Where the run logs and checkpoints, its fingerprint and its stop signal; null: none of them.</param>
    public ChainTrainer(CausalLM model, TrainerOptions options, LoraConfig lora, ChainConfig chain, RunPlumbing? plumbing = null)
    {
        this.plumbing = (plumbing ?? new RunPlumbing()).Validate();
        if (options.Variant != ColaVariant.Paper && options.Method != TrainingMethod.Cola)
            throw new ArgumentException($"cola variant {IO.EnumNames.Name(options.Variant)} needs method cola");
        chain = options.ResolveChain(chain);
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

    /// <summary>
    /// Seeds, lays out the chain, injects LoRA (Algorithm 1 line 2; or unfreezes everything for full
    /// fine-tuning).
    /// </summary>
    public void Setup(ITrainingData data)
    {
        manual_seed(options.Seed);
        model.GradientCheckpointing = options.GradientCheckpointing;
        model.ActivationDtype = ActivationPrecisions.Resolve(options.Activations, model);
        var stepsPerEpoch = MicroBatchFeed.StepsPerEpoch(data, options.GradientAccumulation);
        if (stepsPerEpoch == 0)
            throw new ArgumentException(
                $"gradient accumulation {options.GradientAccumulation} needs at least that many micro-batches per epoch; the data has {data.BatchesPerEpoch}");
        Schedule = ChainSchedule.Create(chainConfig, lora, stepsPerEpoch, options.Epochs);
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
        var ranks = Enumerable.Range(0, chainConfig.Links).Select(i => chainConfig.RankOf(i, lora.Rank)).ToList();
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
        if (Schedule is null) Setup(data);                          // line 2
        using var run = Begin(data, resumeFrom);
        model.train();
        foreach (var link in LinksToTrain(run))                     // line 3
        {
            var trained = TrainLink(link, run);                     // lines 4, 9, 10
            if (NextLink(trained, run) is not { } next) break;      // line 5
            var clock = Stopwatch.StartNew();
            TieKnot(trained, run);                                  // line 6
            var spectrum = RecordDeltaSpectrum(run);
            ExtendChain(next, run);                                 // line 7
            run.LogKnot(next, clock.Elapsed, spectrum);
            SaveCheckpoint(run);
        }
        if (run.StopRequested) Stop(run);
        RecordLastLinkSpectrum(run);
        model.eval();
        return run.Result(Schedule!);
    }

    /// <summary>
    /// Line 3, a link at a time, from the one the run stands in (<see cref="LinkToResumeIn"/>) to the
    /// chain's last. Each is read from the chain as it stands when the link before has ended: an
    /// automatic knot adds the next link when it cuts the one in training. A requested stop ends them.
    /// </summary>
    IEnumerable<Link> LinksToTrain(RunInProgress run)
    {
        for (var index = LinkToResumeIn(run.State.Step).Index; index < Schedule!.Links.Count && !run.StopRequested; index++)
            yield return Schedule.Links[index];
    }

    /// <summary>
    /// Where a run at <paramref name="step"/> carries on: the link the step falls in, which at a knot is
    /// the next link (a checkpoint is taken after the knot is tied); at the budget's end the last link,
    /// with nothing left to train.
    /// </summary>
    Link LinkToResumeIn(int step) => Schedule!.LinkAt(Math.Min(step, Schedule.TotalSteps - 1));

    /// <summary>
    /// Lines 4, 9 and 10 over one link: optimizer steps on A and B (the frozen W stays) until the link's
    /// end, the data's end, an automatic knot (<see cref="CutAutomaticKnot"/>) or a requested stop.
    /// Returns the link as it ended: an automatic knot ends it early.
    /// </summary>
    Link TrainLink(Link link, RunInProgress run)
    {
        while (run.State.Step < link.EndStep && run.Feed.StartStep())
        {
            TrainStep(link, run);
            if (CutAutomaticKnot(link, run)) return Schedule!.Links[link.Index];
            // A knot that follows is checkpointed once it is tied.
            var knotFollows = NextLink(link, run) is not null;
            if (!knotFollows && plumbing.CheckpointEvery > 0 && run.State.Step % plumbing.CheckpointEvery == 0) SaveCheckpoint(run);
            if (plumbing.Stop.IsCancellationRequested)
            {
                run.StopRequested = true;
                break;
            }
        }
        return link;
    }

    /// <summary>
    /// One optimizer step: line 4 (the step's micro-batches), line 9 (forward with LoRA), line 10
    /// (backward, clipping, an update of A and B at the scheduled rate); a non-finite loss or gradient
    /// norm ends the run as diverged.
    /// </summary>
    void TrainStep(Link link, RunInProgress run)
    {
        // Gradient init starts the next link from the frozen weights' gradient of the step before the knot.
        var beforeKnot = run.State.Step + 1 == link.EndStep && link.Index + 1 < Schedule!.Links.Count;
        var loss = AccumulateGradients(link, run, captureWeightGradients: beforeKnot && options.GradientInit);
        var rate = learningRateSchedule!.At(run.State.Step);
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
        var links = Schedule!.IsAutomatic ? Schedule.MaxLinks : Schedule.Links.Count;
        OnStep?.Invoke(new StepReport(run.State.Step, Schedule.TotalSteps, link.Index + 1, links, loss, rate, run.Elapsed));
    }

    /// <summary>
    /// Automatic knots (<see cref="ChainConfig.Auto"/>): when the link's loss has stopped improving
    /// (<see cref="AutoKnots.Decide"/>) the link ends at this step and a new one runs to the budget's
    /// end; the knot is recorded for a resume. False when the link goes on.
    /// </summary>
    bool CutAutomaticKnot(Link link, RunInProgress run)
    {
        if (chainConfig.Auto?.Decide(run.State.StepLosses, link, run.State.Step, Schedule!) is not { } reason) return false;
        CutChain(run.State.Step, reason);
        run.State.AutoKnots.Add(new AutoKnot(run.State.Step, reason));
        return true;
    }

    /// <summary>Ends the current link at <paramref name="step"/> (automatic knots).</summary>
    void CutChain(int step, string reason) => FollowChain(Schedule!.CutAt(step, reason));

    /// <summary>Trains along <paramref name="chain"/>; the learning-rate schedule follows its links.</summary>
    void FollowChain(ChainSchedule chain)
    {
        Schedule = chain;
        learningRateSchedule = new LrSchedule(options.LearningRate, options.WarmupRatio, options.RewarmEachLink, chain, options.RestartWarmupRatio);
    }

    /// <summary>
    /// Line 5: the link after <paramref name="trained"/> when the run has reached the knot between them;
    /// null at the chain's end, or when the data or a requested stop ended the link early.
    /// </summary>
    Link? NextLink(Link trained, RunInProgress run) =>
        run.State.Step == trained.EndStep && trained.Index + 1 < Schedule!.Links.Count ? Schedule.Links[trained.Index + 1] : null;

    /// <summary>
    /// Line 6, tie a knot: W &lt;- W + (alpha/r) B A on every adapted layer, all or none
    /// (<see cref="LoraAdapters.TieKnot"/>); a merge refused as non-finite ends the run as diverged.
    /// The merge's FLOPs count to the link that ended.
    /// </summary>
    void TieKnot(Link trained, RunInProgress run)
    {
        try
        {
            Adapters!.TieKnot();
        }
        catch (KnotRefusedException e)
        {
            throw Diverged(run, run.State.Step, trained.Index + 1, e.Message);
        }
        run.AddFlops(trained.Index, Flops.KnotMerge(Adapters));
    }

    /// <summary>
    /// With <see cref="TrainerOptions.RecordDeltaSpectra"/>: the spectrum of what the chain has built so
    /// far, every tied link and the live one (analysis, not counted as training), its mean effective rank
    /// recorded for the link that ended. Null otherwise.
    /// </summary>
    List<LayerSpectrum>? RecordDeltaSpectrum(RunInProgress run)
    {
        if (!options.RecordDeltaSpectra || Adapters is null) return null;
        var spectrum = DeltaSpectrum.Of(Adapters);
        run.State.DeltaEffectiveRanks.Add(spectrum.Average(l => l.EffectiveRank));
        return spectrum;
    }

    /// <summary>The last link has no knot after it: its spectrum is taken when training ends.</summary>
    void RecordLastLinkSpectrum(RunInProgress run)
    {
        if (run.State.DeltaEffectiveRanks.Count < Schedule!.Links.Count && RecordDeltaSpectrum(run) is { } spectrum)
            run.Log?.Spectrum(run.State.Step, Schedule.Links.Count, spectrum);
    }

    /// <summary>
    /// Line 7, extend the chain: a fresh A at the next link's rank and alpha, B = 0, and a fresh
    /// optimizer. The variants change how: gradient init draws A from the weight gradient
    /// (<see cref="InitializeFromWeightGradients"/>), RAC-LoRA freezes A, ReLoRA keeps the optimizer, pruned.
    /// </summary>
    void ExtendChain(Link next, RunInProgress run)
    {
        var keepOptimizer = options.OptimizerPruneFraction > 0;
        // The old link's optimizer state goes before the new link is allocated, so a knot never holds
        // both (the peak TrainingMemory counts). ReLoRA keeps it, pruned: the parameters stay the same
        // tensors, at the same rank, and only their values are re-initialised.
        if (keepOptimizer) OptimizerPruning.Prune(optimizer!, options.OptimizerPruneFraction);
        else optimizer!.Dispose();
        Adapters!.ExtendChain(next.Rank, next.Alpha);
        if (options.GradientInit) InitializeFromWeightGradients(run, next.Index - 1);
        if (options.FreezeA) Adapters.FreezeA();
        OnLinkStart?.Invoke(next, Adapters);
        if (!keepOptimizer)
        {
            trainable = Trainable();
            optimizer = NewOptimizer(trainable);
        }
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
    /// A requested stop ends the run between steps, checkpointed after the last whole step. A checkpoint
    /// already taken at that step serves: a knot that was due has been tied and checkpointed, so the run
    /// resumes into the next link.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    void Stop(RunInProgress run)
    {
        if (run.CheckpointedStep != run.State.Step) SaveCheckpoint(run);
        model.eval();
        throw new TrainingStoppedException(run.State.Step, plumbing.CheckpointDir);
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
        if (plumbing.CheckpointDir is null) return;
        run.State.ElapsedSeconds = run.Elapsed.TotalSeconds;
        run.Log?.Flush();
        Checkpoint.Save(plumbing.CheckpointDir, run.State, model, Adapters, optimizer!);
        run.CheckpointedStep = run.State.Step;
    }

    /// <summary>A fresh run, or one restored exactly from a checkpoint, with its optimizer, log, data feed and LR schedule.</summary>
    RunInProgress Begin(ITrainingData data, string? resumeFrom)
    {
        // A run starts from the chain as laid out; automatic knots cut it again as they are (re)placed.
        FollowChain(Schedule!.Uncut());
        var state = new RunState { LinkFlops = new double[Schedule.MaxLinks], Fingerprint = new(plumbing.Fingerprint ?? new Dictionary<string, string>()) };
        trainable = Trainable();
        var trainableCount = trainable.Sum(p => p.numel());
        optimizer?.Dispose();
        optimizer = NewOptimizer(trainable);
        if (resumeFrom is not null) state = Restore(resumeFrom, data);
        return new RunInProgress(state, trainableCount, TrainingLog.Open(plumbing.LogPath, state.Step, plumbing.TensorBoardDir),
            new MicroBatchFeed(data, options.GradientAccumulation, options.Epochs, state), new FlopMeter(model, state.LinkFlops));
    }

    /// <summary>
    /// The run as the checkpoint in <paramref name="resumeFrom"/> left it: weights, LoRA, RNG, data
    /// position, its automatic knots cut again, and the optimizer state over the restored parameters.
    /// </summary>
    RunState Restore(string resumeFrom, ITrainingData data)
    {
        var state = Checkpoint.Restore(resumeFrom, model, Adapters, Schedule!, plumbing.Fingerprint);
        state.Fingerprint = new(plumbing.Fingerprint ?? new Dictionary<string, string>());
        var expected = state.Epoch * MicroBatchFeed.StepsPerEpoch(data, options.GradientAccumulation) + state.BatchInEpoch / options.GradientAccumulation;
        if (state.Step != expected)
            throw new InvalidDataException(
                $"{resumeFrom}: step {state.Step} does not match epoch {state.Epoch}, micro-batch {state.BatchInEpoch} (expected step {expected}); same data and options as the interrupted run?");
        foreach (var knot in state.AutoKnots) CutChain(knot.Step, knot.Reason);
        trainable = Trainable();
        optimizer!.Dispose();
        optimizer = NewOptimizer(trainable);
        Checkpoint.RestoreOptimizer(resumeFrom, optimizer, state.Step);
        return state;
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
