// An experiment grid like the paper's Appendix A.1: tasks x methods x learning rates x seeds.
// The best learning rate per (task, method) is picked on dev, then test is reported as
// mean ± std over seeds at that learning rate.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChainLora.Experiments;

/// <summary>One method row of the grid. Kind: zero-shot, icl, lora, cola or full.</summary>
public sealed record MethodSpec
{
    public string Name { get; init; } = "";
    public string Kind { get; init; } = "lora";
    public int ChainLength { get; init; } = 1;
    public IReadOnlyList<int>? Ranks { get; init; }
    /// <summary>Demonstrations for in-context learning.</summary>
    public int Icl { get; init; }
    public string Optimizer { get; init; } = "adamw";
    /// <summary>Overrides the grid's learning rates for this method.</summary>
    public IReadOnlyList<double>? LearningRates { get; init; }

    [JsonIgnore]
    public bool Trains => Kind is "lora" or "cola" or "full";
}

public sealed record TaskSpec
{
    public string Name { get; init; } = "";
    /// <summary>Folder (or file, for lm) relative to the config's data_root.</summary>
    public string Data { get; init; } = "";
}

public sealed record ExperimentConfig
{
    public string Model { get; init; } = "";
    public string DataRoot { get; init; } = "";
    public IReadOnlyList<TaskSpec> Tasks { get; init; } = [];
    public IReadOnlyList<MethodSpec> Methods { get; init; } = [];
    public IReadOnlyList<double> LearningRates { get; init; } = [1e-3];
    public IReadOnlyList<long> Seeds { get; init; } = [0];
    public int Epochs { get; init; } = 5;
    public int NumTrain { get; init; } = 1000;
    public int NumDev { get; init; } = 500;
    public int NumEval { get; init; } = 1000;
    public int BatchSize { get; init; } = 8;
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public string BaseDtype { get; init; } = "fp32";

    static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
    };

    /// <summary>Reads and validates; relative model and data paths resolve against the config's folder.</summary>
    public static ExperimentConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"experiment config not found: {path}", path);
        ExperimentConfig config;
        try
        {
            config = JsonSerializer.Deserialize<ExperimentConfig>(File.ReadAllText(path), Options)
                ?? throw new InvalidDataException($"{path}: empty config");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        config = config with
        {
            Model = Path.GetFullPath(Path.Combine(dir, config.Model)),
            DataRoot = Path.GetFullPath(Path.Combine(dir, config.DataRoot)),
        };
        return config.Validate(path);
    }

    public ExperimentConfig Validate(string source)
    {
        void Require(bool ok, string message) { if (!ok) throw new InvalidDataException($"{source}: {message}"); }
        Require(Model.Length > 0, "field 'model' is required");
        Require(Tasks.Count > 0, "field 'tasks' needs at least one task");
        Require(Methods.Count > 0, "field 'methods' needs at least one method");
        Require(Seeds.Count > 0, "field 'seeds' needs at least one seed");
        Require(LearningRates.Count > 0 && LearningRates.All(x => x > 0), "field 'learning_rates' needs positive values");
        foreach (var m in Methods)
        {
            Require(m.Name.Length > 0, "every method needs a 'name'");
            Require(m.Kind is "zero-shot" or "icl" or "lora" or "cola" or "full",
                $"method '{m.Name}': kind '{m.Kind}' is not one of zero-shot, icl, lora, cola, full");
            Require(m.Kind == "cola" || m.ChainLength == 1, $"method '{m.Name}': chain_length {m.ChainLength} needs kind cola");
            Require(m.Kind != "icl" || m.Icl > 0, $"method '{m.Name}': kind icl needs icl > 0");
        }
        Require(Methods.Select(m => m.Name).Distinct().Count() == Methods.Count, "method names must be unique");
        foreach (var t in Tasks) Require(t.Name.Length > 0 && t.Data.Length > 0, "every task needs 'name' and 'data'");
        return this;
    }

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);
    public static T Deserialize<T>(string json, string source)
    {
        try { return JsonSerializer.Deserialize<T>(json, Options) ?? throw new InvalidDataException($"{source}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
    }
}
