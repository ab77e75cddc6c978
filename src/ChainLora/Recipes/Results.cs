// What a task run reports: result.json (snake_case keys), also the last stdout line of --json runs.
using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Recipes;

/// <summary>
/// result.json's "hyperparameters": the run's options record written field by field
/// (<see cref="OptionRecords.Flatten"/>), with what only the run knows put in: each link's rank and
/// alpha, how knots are placed, the dtypes and device in use. Fields stay in the order result.json
/// has always had, so files compare across versions; an option added to a record is written after them.
/// </summary>
public static class HyperParameters
{
    /// <summary>The order of the fields result.json has always written.</summary>
    public static readonly IReadOnlyList<string> Order =
    [
        "epochs", "learning_rate", "batch_size", "gradient_accumulation", "optimizer", "weight_decay", "momentum", "warmup_ratio",
        "max_grad_norm", "chain_length", "ranks", "alphas", "lora_dropout", "targets", "lora_bias", "num_train", "num_dev", "num_eval",
        "base_dtype", "device", "adapter", "gradient_checkpointing", "knots", "variant", "context", "activations", "split",
        "use_rslora", "train_on_inputs", "pack",
    ];

    /// <summary>The hyperparameters of a run of <paramref name="options"/> (resolved) on <paramref name="model"/> with <paramref name="schedule"/>.</summary>
    public static JsonObject Of(TrainRecipeOptions options, CausalLM model, ChainSchedule schedule, TaskKind kind)
    {
        var h = OptionRecords.Flatten(options);
        var full = options.Trainer.Method == TrainingMethod.Full;
        // Each link's rank and alpha stand for the LoRA config's one and the chain's rank list.
        foreach (var key in new[] { "rank", "alpha", "auto" }) h.Remove(key);
        h["ranks"] = new JsonArray(schedule.Links.Select(l => (JsonNode)l.Rank).ToArray());
        h["alphas"] = new JsonArray(schedule.Links.Select(l => (JsonNode)l.Alpha).ToArray());
        h["knots"] = schedule.Auto is { } auto ? $"auto: window {auto.WindowFor(schedule.TotalSteps)} steps, threshold {auto.Threshold}" : "fixed";
        // What the machine resolved: dtypes in use, the device, the adapter's full path.
        h["base_dtype"] = StorageDtype.Name(model.StorageDtype);
        h["device"] = model.Device.ToString();
        h["activations"] = StorageDtype.Name(model.ActivationDtype);
        h["adapter"] = options.Adapter is null ? null : Path.GetFullPath(options.Adapter);
        // Full fine-tuning has no LoRA: its LoRA fields are null (flags false).
        if (full)
            foreach (var key in OptionRecords.Flatten(options.Lora).Select(p => p.Key).Concat(["ranks", "alphas", "knots"]).Where(h.ContainsKey).ToList())
                h[key] = h[key] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? false : null;
        // Another task kind's settings are null.
        if (kind != TaskKind.LanguageModelling) h["split"] = null;
        if (kind != TaskKind.Sft) h["train_on_inputs"] = h["pack"] = null;
        return OptionRecords.Ordered(h, Order);
    }
}

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
public sealed record TaskRunResult(string Task, TrainingMethod Method, long Seed, string Model, JsonObject Hyperparameters, DataSummary Data,
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
