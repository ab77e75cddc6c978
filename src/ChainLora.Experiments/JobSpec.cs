// One grid cell as a self-contained job: `chainlora run-job SPEC.json` executes it, so a grid can
// be fanned out on any scheduler (Slurm arrays, Kubernetes Jobs) and `chainlora report` collects
// whatever results exist. Results on disk are the source of truth: a finished job has a readable result.json.
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Recipes;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Experiments;

public sealed record JobSpec
{
    public string Task { get; init; } = "";
    public string Data { get; init; } = "";
    public string Model { get; init; } = "";
    /// <summary>The method row's name (a column of the report).</summary>
    public string Method { get; init; } = "";
    public MethodKind Kind { get; init; }
    public int ChainLength { get; init; } = 1;
    public IReadOnlyList<int>? Ranks { get; init; }
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public int Icl { get; init; }
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    public double LearningRate { get; init; }
    public long Seed { get; init; }
    public int Epochs { get; init; }
    public int NumTrain { get; init; }
    public int NumDev { get; init; }
    public int NumEval { get; init; }
    public int BatchSize { get; init; }
    public string BaseDtype { get; init; } = "fp32";
    // Written only when not the default, so the ids of cells from before these fields existed stay the same.
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public ColaVariant Variant { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public KnotPlacement Knots { get; init; }
    /// <summary>lm: tokens per window; null is the model's maximum positions.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Context { get; init; }
    /// <summary>lm: where dev comes from (written only when contiguous, so the first study's ids stay).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public TextSplit Split { get; init; }
    /// <summary>rsLoRA (written only when set).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Rslora { get; init; }
    /// <summary>A text of the model's own domain scored after training (forgetting); written only when set.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Source { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? SourceWindows { get; init; }
    /// <summary>Log the accumulated delta W's spectrum at every knot (written only when set).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool DeltaSpectra { get; init; }
    /// <summary>The job's own folder: spec.json, result.json, train_log.jsonl, checkpoints.</summary>
    public string Out { get; init; } = "";

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
        foreach (var (field, value) in new[] { ("learning_rate", spec.LearningRate), ("alpha", spec.Alpha) })
            if (!double.IsFinite(value)) throw new InvalidDataException($"{path}: field '{field}': {value.ToString(CultureInfo.InvariantCulture)} is not a finite number");
        return spec;
    }

    public void Save(string path) => AtomicFile.WriteAllText(path, ExperimentConfig.Serialize(this));
}
