// What a task run reports: result.json (snake_case keys), also the last stdout line of --json runs.
using System.Text.Json;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Recipes;

/// <summary>Every setting of a run. Ranks and alphas are per link; LoRA fields are null for full fine-tuning.</summary>
public sealed record HyperParameters(int Epochs, double LearningRate, int BatchSize, int GradientAccumulation, OptimizerKind Optimizer,
    double WeightDecay, double Momentum, double WarmupRatio, double MaxGradNorm, int ChainLength,
    IReadOnlyList<int>? Ranks, IReadOnlyList<double>? Alphas, double? LoraDropout, IReadOnlyList<string>? Targets, LoraBias? LoraBias,
    int NumTrain, int NumDev, int NumEval, string BaseDtype, string Device, string? Adapter, bool GradientCheckpointing = false,
    string? Knots = null, ColaVariant Variant = ColaVariant.Paper, int? Context = null, string? Activations = null, TextSplit? Split = null,
    bool UseRslora = false, bool? TrainOnInputs = null, bool? Pack = null);

/// <summary>
/// One link's training; rank and alpha are null for full fine-tuning; KnotReason says why the knot before it sits where it does;
/// DeltaEffectiveRank is the accumulated delta W's effective rank when the link ended (mean over adapted layers).
/// </summary>
public sealed record LinkSummary(int Link, int? Rank, double? Alpha, int Steps, double MeanLoss, double FinalLoss, IReadOnlyList<double> Losses,
    string? KnotReason = null, double? DeltaEffectiveRank = null);

public sealed record TrainingSummary(int Steps, IReadOnlyList<LinkSummary> Links, double FinalLoss, long Tokens, long TrainableParameters,
    double Seconds, double KnotSeconds)
{
    public static TrainingSummary Of(TrainingResult r, bool full) => new(r.StepLosses.Count,
        r.Links.Select(l => new LinkSummary(l.Index + 1, full ? null : l.Rank, full ? null : l.Alpha, l.Losses.Count, l.MeanLoss,
            l.Losses.Count == 0 ? double.NaN : l.Losses[^1], l.Losses, l.Reason, l.DeltaEffectiveRank)).ToList(),
        r.FinalLoss, r.Tokens, r.TrainableParameters, r.Elapsed.TotalSeconds, r.KnotTime.TotalSeconds);
}

/// <summary>
/// A train run. <c>Source</c> scores a text of the pretrained model's own domain after training (forgetting). <c>TrainingFlops</c> is the analytic count of <see cref="Flops"/> (forward, input
/// gradients of every matmul, weight gradients of the trainable ones); <c>WallSeconds</c> runs from
/// reading the data to writing this result.
/// </summary>
public sealed record TaskRunResult(string Task, TrainingMethod Method, long Seed, string Model, HyperParameters Hyperparameters, DataSummary Data,
    TrainingSummary Training, IReadOnlyDictionary<string, double>? Dev, IReadOnlyDictionary<string, double> Test, double TrainingFlops,
    double WallSeconds, RunStatus Status = RunStatus.Finished, string? Divergence = null, IReadOnlyDictionary<string, double>? Source = null);

/// <summary>How a train run ended: finished, or stopped at a diverging step (no dev or test metrics then).</summary>
public enum RunStatus { Finished, Diverged }

/// <summary>A zero-shot or in-context evaluation (`chainlora eval`).</summary>
public sealed record TaskEvalResult(string Task, long Seed, string Model, string? Adapter, int Demonstrations, DataSummary Data,
    IReadOnlyDictionary<string, double> Test, double WallSeconds, IReadOnlyDictionary<string, double>? Source = null);

public static class ResultFile
{
    /// <summary>The file a finished run or job writes into its folder.</summary>
    public const string Name = "result.json";

    static readonly JsonSerializerOptions Compact = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        Converters = { new JsonLines.NonFiniteAsNull(), new EnumNames.Converter() },
    };

    static readonly JsonSerializerOptions Indented = new(Compact) { WriteIndented = true };

    /// <summary>One line of JSON (NaN and infinities as null).</summary>
    public static string ToJson<T>(T result) => JsonSerializer.Serialize(result, Compact);

    /// <summary>
    /// Writes <paramref name="result"/> to <paramref name="path"/> through a temporary file in the
    /// same folder and a rename, so a reader never sees half a file and nothing else is touched.
    /// </summary>
    public static void Write<T>(string path, T result)
    {
        IO.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(result, Indented) + "\n");
    }
}
