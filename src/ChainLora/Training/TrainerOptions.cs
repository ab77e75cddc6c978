// The algorithm's settings of a training run, with the library's defaults; Validate names the bad value.
// Where the run writes and how it is stopped is RunPlumbing, beside it.
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Models;

namespace ChainLora.Training;

public enum TrainingMethod
{
    /// <summary>One LoRA link: a chain of length 1.</summary>
    Lora,
    /// <summary>A chain of LoRA links with a knot between links (Algorithm 1).</summary>
    Cola,
    /// <summary>Every weight trains; no chain.</summary>
    Full,
}

public enum OptimizerKind { AdamW, Sgd, AdaGrad }

/// <summary>
/// The algorithm's settings. Recorded field by field (<see cref="OptionRecords"/>) into result.json's
/// hyperparameters and the checkpoint fingerprint; a new setting is recorded without copying it anywhere.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Recorded beside the hyperparameters (result.json's "method"), not among them.</summary>
    [NotRecorded]
    public TrainingMethod Method { get; init; } = TrainingMethod.Lora;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    public double LearningRate { get; init; } = 1e-4;
    public double WeightDecay { get; init; }
    public double Momentum { get; init; }
    public int Epochs { get; init; } = 1;
    public int GradientAccumulation { get; init; } = 1;
    public double MaxGradNorm { get; init; }
    public double WarmupRatio { get; init; }
    [RecordedWhenSet]
    public bool RewarmEachLink { get; init; }
    /// <summary>Set by the recipe from its own seed, which result.json records beside the hyperparameters.</summary>
    [NotRecorded]
    public long Seed { get; init; }
    /// <summary>
    /// Keep only each decoder layer's input and recompute the layer in backward
    /// (<see cref="CausalLM.GradientCheckpointing"/>): same losses, less activation memory, about a
    /// third more compute. FLOP counts stay those of the model (recomputation is not counted).
    /// </summary>
    public bool GradientCheckpointing { get; init; }
    /// <summary>The dtype of the activations (<see cref="CausalLM.ActivationDtype"/>): by device (auto), fp32 or bf16.</summary>
    public ActivationPrecision Activations { get; init; }
    /// <summary>
    /// Start each link after the first with A along the top right singular vectors of the full weight
    /// gradient of the link's last step (Algorithm 2's oracle direction) instead of a random A.
    /// </summary>
    [RecordedWhenSet]
    public bool GradientInit { get; init; }
    /// <summary>
    /// RAC-LoRA (Malinovsky et al. 2024, arXiv 2410.08305): every link's A is drawn at random and frozen; only B
    /// (and configured biases) train.
    /// </summary>
    [RecordedWhenSet]
    public bool FreezeA { get; init; }
    /// <summary>
    /// ReLoRA (Lialin et al. 2023, arXiv 2307.05695): at each knot keep the optimizer and prune this fraction of
    /// every state tensor by magnitude (the smallest entries set to 0) instead of starting a fresh one; 0: fresh.
    /// </summary>
    [RecordedWhenSet]
    public double OptimizerPruneFraction { get; init; }
    /// <summary>
    /// ReLoRA's jagged schedule: after each knot the rate restarts from near 0 and climbs linearly back to the
    /// budget-wide schedule over this fraction of the new link (at least one step); 0: no restart.
    /// </summary>
    [RecordedWhenSet]
    public double RestartWarmupRatio { get; init; }
    /// <summary>
    /// At every knot and at the chain's end, log the singular values and effective rank of each adapted layer's
    /// accumulated delta W (<see cref="Lora.DeltaSpectrum"/>). Off by default: on a large model the SVDs cost
    /// minutes per knot. It changes no number, so it is not a hyperparameter (the fingerprint names it).
    /// </summary>
    [NotRecorded]
    public bool RecordDeltaSpectra { get; init; }
    /// <summary>The named variant these options came from, for the record (<see cref="ColaVariants.Apply"/> sets the options).</summary>
    public ColaVariant Variant { get; init; } = ColaVariant.Paper;

    public TrainerOptions Validate()
    {
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"learning rate {LearningRate}: must be a positive number");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ArgumentException($"weight decay {WeightDecay}: must be a number >= 0");
        if (!(Momentum is >= 0 and < 1)) throw new ArgumentException($"momentum {Momentum}: must be in [0, 1)");
        if (Epochs < 1) throw new ArgumentException($"epochs {Epochs}: must be at least 1");
        if (GradientAccumulation < 1) throw new ArgumentException($"gradient accumulation {GradientAccumulation}: must be at least 1");
        if (!(MaxGradNorm >= 0) || double.IsInfinity(MaxGradNorm)) throw new ArgumentException($"max grad norm {MaxGradNorm}: must be a number >= 0 (0 turns clipping off)");
        if (!(WarmupRatio is >= 0 and < 1)) throw new ArgumentException($"warmup ratio {WarmupRatio}: must be in [0, 1)");
        if (!(OptimizerPruneFraction is >= 0 and < 1)) throw new ArgumentException($"optimizer prune fraction {OptimizerPruneFraction}: must be in [0, 1)");
        if (!(RestartWarmupRatio is >= 0 and < 1)) throw new ArgumentException($"restart warmup ratio {RestartWarmupRatio}: must be in [0, 1)");
        return this;
    }

    public static OptimizerKind ParseOptimizer(string text) => EnumNames.Parse<OptimizerKind>(text, "optimizer");

    /// <summary>Links in a chain when none is given: the paper's 3 for COLA, 1 (no chain) otherwise.</summary>
    public static int DefaultChainLength(TrainingMethod method) => method == TrainingMethod.Cola ? 3 : 1;

    /// <summary><paramref name="chain"/> with its length given: as it is, or this method's <see cref="DefaultChainLength"/>.</summary>
    public ChainConfig ResolveChain(ChainConfig chain) => chain.Length is null ? chain with { Length = DefaultChainLength(Method) } : chain;
}

/// <summary>
/// Where a training run writes and how it is stopped: none of it changes the maths, so it is kept out of
/// <see cref="TrainerOptions"/> (and out of result.json and the fingerprint).
/// </summary>
public sealed record RunPlumbing
{
    /// <summary>JSONL per step {step, link, loss, lr} and knot events; null writes none.</summary>
    public string? LogPath { get; init; }
    /// <summary>A folder for TensorBoard event files (<see cref="TensorBoardEvents"/>); null writes none.</summary>
    public string? TensorBoardDir { get; init; }
    /// <summary>Folder for checkpoints (at every link end, and every <see cref="CheckpointEvery"/> steps when positive).</summary>
    public string? CheckpointDir { get; init; }
    public int CheckpointEvery { get; init; }
    /// <summary>
    /// Stops the run cleanly when cancelled (Ctrl+C, SIGTERM): after the step in progress, a
    /// checkpoint is saved and <see cref="TrainingStoppedException"/> thrown.
    /// </summary>
    public CancellationToken Stop { get; init; }
    /// <summary>
    /// What defines the run beyond the trainer's options (model, task, data files' hashes, ...), by name:
    /// recorded in checkpoints, and a resume whose values differ is refused naming the first.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Fingerprint { get; init; }

    public RunPlumbing Validate()
    {
        if (CheckpointEvery < 0) throw new ArgumentException($"checkpoint every {CheckpointEvery}: must be >= 0");
        return this;
    }
}
