// One grid cell as a self-contained job: `chainlora run-job SPEC.json` executes it, so a grid can
// be fanned out on any scheduler (Slurm arrays, Kubernetes Jobs) and `chainlora report` collects
// whatever results exist. Results on disk are the source of truth: a finished job has a readable result.json.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Recipes;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Experiments;

/// <summary>
/// One cell: the run's options record (<see cref="TrainRecipeOptions"/>, the same record `chainlora train`
/// builds) and the grid's row it belongs to. spec.json is written in the layout grid cells have always had
/// (<see cref="JobSpecJson"/>), so the ids, and with them the finished cells, stay what they were.
/// </summary>
[JsonConverter(typeof(JobSpecJson))]
public sealed record JobSpec
{
    /// <summary>
    /// Task, data, model, sizes, seed and every setting of the run; a scoring kind reads its task, data and sizes.
    /// The trainer's method is the <see cref="Kind"/>'s (<see cref="JobRunner.TrainOptions"/>).
    /// </summary>
    public TrainRecipeOptions Options { get; init; } = new() { Task = "", Data = "" };
    /// <summary>The method row's name (a column of the report).</summary>
    public string Method { get; init; } = "";
    public MethodKind Kind { get; init; }
    /// <summary>Demonstrations of an in-context row.</summary>
    public int Icl { get; init; }
    /// <summary>The job's own folder: spec.json, result.json, train_log.jsonl, checkpoints.</summary>
    public string Out { get; init; } = "";

    // The grid's axes, which reports group by.
    public string Task => Options.Task;
    public long Seed => Options.Seed;
    public double LearningRate => Options.Trainer.LearningRate;

    /// <summary>A stable id from the content (without the output folder).</summary>
    [JsonIgnore]
    public string Id
    {
        get
        {
            var key = ExperimentConfig.Serialize(this with { Out = "" });
            var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..10].ToLowerInvariant();
            var slug = new string($"{Task}-{Method}".Select(c => char.IsLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-').ToArray());
            return $"{slug}-lr{LearningRate.ToString("G3", CultureInfo.InvariantCulture)}-s{Seed}-{hash}";
        }
    }

    [JsonIgnore]
    public string SpecPath => Path.Combine(Out, "spec.json");
    [JsonIgnore]
    public string ResultPath => Path.Combine(Out, ResultFile.Name);
    /// <summary>
    /// Whether the cell is done: its result.json reads as a result (<see cref="TryReadResult"/>). A
    /// damaged one does not count, so `chainlora experiment` runs the cell again.
    /// </summary>
    [JsonIgnore]
    public bool IsFinished => TryReadResult(out _) is not null;

    /// <summary>
    /// The cell's result, read as <see cref="ResultTable"/> reads it for a report; null when it has
    /// none, or when result.json is cut short, is not JSON or lacks the metrics a report needs
    /// (<paramref name="problem"/> then says which). One check for report, status and the runners.
    /// </summary>
    public JobResult? TryReadResult(out string? problem)
    {
        problem = null;
        if (!File.Exists(ResultPath)) return null;
        try
        {
            return ResultTable.Read(this, ResultPath, Out);
        }
        catch (InvalidDataException e)
        {
            problem = e.Message;
            return null;
        }
    }

    public static JobSpec Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"job spec not found: {path}", path);
        var spec = ExperimentConfig.Deserialize<JobSpec>(File.ReadAllText(path), path);
        // Infinity (1e999 in the file) would fail later, where the spec is serialized for its id, with .NET's own message.
        foreach (var (field, value) in new[] { ("learning_rate", spec.LearningRate), ("alpha", spec.Options.Lora.Alpha) })
            if (!double.IsFinite(value)) throw new InvalidDataException($"{path}: field '{field}': {value.ToString(CultureInfo.InvariantCulture)} is not a finite number");
        return spec;
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, ExperimentConfig.Serialize(this));
}

/// <summary>
/// spec.json's layout: the fields grid cells have always written, in their order (those added later only when
/// set), then any other setting of the options record that differs from its default (<see cref="OptionRecords"/>),
/// then the folder. Reading takes the same names back into the record.
/// </summary>
public sealed class JobSpecJson : JsonConverter<JobSpec>
{
    /// <summary>The record's settings the layout names itself (its own names where they differ).</summary>
    public static readonly IReadOnlySet<string> Named = new HashSet<string>
    {
        "chain_length", "ranks", "rank", "alpha", "optimizer", "learning_rate", "epochs", "num_train", "num_dev", "num_eval",
        "batch_size", "base_dtype", "variant", "auto", "context", "split", "use_rslora", "source", "source_windows",
    };

    /// <summary>A fresh record's settings: any other setting is written only where it differs from these.</summary>
    static readonly JsonObject Defaults = OptionRecords.Flatten(new TrainRecipeOptions { Task = "", Data = "" });

    public override void Write(Utf8JsonWriter writer, JobSpec spec, JsonSerializerOptions options)
    {
        var o = spec.Options;
        var fields = new JsonObject
        {
            ["task"] = o.Task, ["data"] = o.Data, ["model"] = o.Model, ["method"] = spec.Method, ["kind"] = EnumNames.Name(spec.Kind),
            ["chain_length"] = o.Chain.Length ?? 1, ["ranks"] = o.Chain.Ranks is { } r ? new JsonArray(r.Select(x => (JsonNode)x).ToArray()) : null,
            ["rank"] = o.Lora.Rank, ["alpha"] = o.Lora.Alpha, ["icl"] = spec.Icl, ["optimizer"] = EnumNames.Name(o.Trainer.Optimizer),
            ["learning_rate"] = o.Trainer.LearningRate, ["seed"] = o.Seed, ["epochs"] = o.Trainer.Epochs,
            ["num_train"] = o.Sizes.Train, ["num_dev"] = o.Sizes.Dev, ["num_eval"] = o.Sizes.Eval, ["batch_size"] = o.BatchSize,
            ["base_dtype"] = StorageDtype.Name(o.BaseDtype),
        };
        // Added after the first grids: written only when set, so the ids of cells from before stay the same.
        if (o.Trainer.Variant != ColaVariant.Paper) fields["variant"] = EnumNames.Name(o.Trainer.Variant);
        if (o.Chain.Auto is not null) fields["knots"] = EnumNames.Name(KnotPlacement.Auto);
        if (o.Context is { } context) fields["context"] = context;
        if (o.Split != TextSplit.Shuffled) fields["split"] = EnumNames.Name(o.Split);
        if (o.Lora.UseRsLora) fields["rslora"] = true;
        if (o.Source is { } source)
        {
            fields["source"] = source;
            fields["source_windows"] = o.SourceWindows;
        }
        if (o.Trainer.RecordDeltaSpectra) fields["delta_spectra"] = true;
        foreach (var (key, value) in OptionRecords.Flatten(o))
            if (!Named.Contains(key) && !JsonNode.DeepEquals(value, Defaults[key])) fields[key] = value?.DeepClone();
        fields["out"] = spec.Out;
        fields.WriteTo(writer, options);
    }

    public override JobSpec Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var fields = JsonNode.Parse(ref reader) as JsonObject ?? throw new JsonException("a job spec is a JSON object");
        try
        {
            return Read(fields, options);
        }
        catch (ArgumentException e) when (e.ParamName == "key")
        {
            throw new JsonException($"a field is written twice: {e.Message}");
        }
    }

    static JobSpec Read(JsonObject fields, JsonSerializerOptions options)
    {
        var spec = new JobSpec();
        TrainRecipeOptions o = spec.Options with { Chain = new ChainConfig { Length = 1 }, Trainer = new TrainerOptions { Epochs = 0, LearningRate = 0 }, Sizes = new(0, 0, 0), BatchSize = 0 };
        foreach (var (key, node) in fields)
        {
            T Get<T>()
            {
                try
                {
                    return node.Deserialize<T>(options)!;
                }
                catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or ArgumentException)
                {
                    throw new JsonException($"field '{key}': {node?.ToJsonString() ?? "null"} is not a {typeof(T).Name}");
                }
            }
            switch (key)
            {
                case "task": o = o with { Task = Get<string>() }; break;
                case "data": o = o with { Data = Get<string>() }; break;
                case "model": o = o with { Model = Get<string>() }; break;
                case "method": spec = spec with { Method = Get<string>() }; break;
                case "kind": spec = spec with { Kind = Get<MethodKind>() }; break;
                case "icl": spec = spec with { Icl = Get<int>() }; break;
                case "out": spec = spec with { Out = Get<string>() }; break;
                case "chain_length": o = o with { Chain = o.Chain with { Length = Get<int>() } }; break;
                case "ranks": o = o with { Chain = o.Chain with { Ranks = Get<List<int>?>() is { Count: > 0 } r ? r : null } }; break;
                case "knots": o = o with { Chain = o.Chain with { Auto = Get<KnotPlacement>() == KnotPlacement.Auto ? new AutoKnots() : null } }; break;
                case "rank": o = o with { Lora = o.Lora with { Rank = Get<int>() } }; break;
                case "alpha": o = o with { Lora = o.Lora with { Alpha = Get<double>() } }; break;
                case "rslora": o = o with { Lora = o.Lora with { UseRsLora = Get<bool>() } }; break;
                case "optimizer": o = o with { Trainer = o.Trainer with { Optimizer = Get<OptimizerKind>() } }; break;
                case "learning_rate": o = o with { Trainer = o.Trainer with { LearningRate = Get<double>() } }; break;
                case "epochs": o = o with { Trainer = o.Trainer with { Epochs = Get<int>() } }; break;
                case "variant": o = o with { Trainer = o.Trainer with { Variant = Get<ColaVariant>() } }; break;
                case "delta_spectra": o = o with { Trainer = o.Trainer with { RecordDeltaSpectra = Get<bool>() } }; break;
                case "seed": o = o with { Seed = Get<long>() }; break;
                case "num_train": o = o with { Sizes = o.Sizes with { Train = Get<int>() } }; break;
                case "num_dev": o = o with { Sizes = o.Sizes with { Dev = Get<int>() } }; break;
                case "num_eval": o = o with { Sizes = o.Sizes with { Eval = Get<int>() } }; break;
                case "batch_size": o = o with { BatchSize = Get<int>() }; break;
                case "base_dtype":
                    try
                    {
                        o = o with { BaseDtype = StorageDtype.Parse(Get<string>()) };
                    }
                    catch (ArgumentException e)
                    {
                        throw new JsonException($"field 'base_dtype': {e.Message}");
                    }
                    break;
                case "context": o = o with { Context = Get<int?>() }; break;
                case "split": o = o with { Split = Get<TextSplit>() }; break;
                case "source": o = o with { Source = Get<string?>() }; break;
                case "source_windows": o = o with { SourceWindows = Get<int?>() ?? TrainRecipeOptions.DefaultSourceWindows }; break;
                default:
                    try
                    {
                        if (Named.Contains(key) || !OptionRecords.TryWith(o, key, node, out o))
                            throw new JsonException($"field '{key}' is not a job spec field");
                    }
                    catch (ArgumentException e)
                    {
                        throw new JsonException($"field '{key}': {e.Message}");
                    }
                    break;
            }
        }
        return spec with { Options = o };
    }
}
