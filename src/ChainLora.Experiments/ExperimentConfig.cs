// An experiment grid like the paper's Appendix A.1: tasks x methods x learning rates x seeds.
// The best learning rate per (task, method) is picked on dev, then test is reported as
// mean ± std over seeds at that learning rate.
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Experiments;

/// <summary>What a grid row does: score without training (zero-shot, in-context) or train (LoRA, COLA, full).</summary>
public enum MethodKind
{
    [JsonStringEnumMemberName("zero-shot")]
    ZeroShot,
    Icl,
    Lora,
    Cola,
    Full,
}

public static class MethodKinds
{
    public static bool Trains(this MethodKind kind) => kind is MethodKind.Lora or MethodKind.Cola or MethodKind.Full;

    /// <summary>The trainer's method for a kind that trains.</summary>
    public static TrainingMethod TrainingMethod(this MethodKind kind) => kind switch
    {
        MethodKind.Lora => Training.TrainingMethod.Lora,
        MethodKind.Cola => Training.TrainingMethod.Cola,
        MethodKind.Full => Training.TrainingMethod.Full,
        _ => throw new ArgumentException($"method kind {EnumNames.Name(kind)} does not train"),
    };

    /// <summary>LoRA or COLA: the runs that have links, ranks and a chain to export.</summary>
    public static bool HasChain(this MethodKind kind) => kind is MethodKind.Lora or MethodKind.Cola;
}

/// <summary>One method row of the grid.</summary>
public sealed record MethodSpec
{
    public string Name { get; init; } = "";
    public MethodKind Kind { get; init; } = MethodKind.Lora;
    /// <summary>Links in the chain; null is the method's default (3 for cola, 1 otherwise).</summary>
    public int? ChainLength { get; init; }
    public IReadOnlyList<int>? Ranks { get; init; }
    /// <summary>Demonstrations for in-context learning.</summary>
    public int Icl { get; init; }
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>Overrides the grid's learning rates for this method.</summary>
    public IReadOnlyList<double>? LearningRates { get; init; }
    /// <summary>The chain variant (cola only; `--cola-variant`).</summary>
    public ColaVariant Variant { get; init; } = ColaVariant.Paper;
    /// <summary>Where the knots sit (cola only; `--knots`).</summary>
    public KnotPlacement Knots { get; init; } = KnotPlacement.Fixed;
    /// <summary>Overrides the grid's num_train for this method (low-data rows).</summary>
    public int? NumTrain { get; init; }
    /// <summary>Overrides the grid's alpha for this method (an alpha policy such as alpha = 2r: 64 at rank 32).</summary>
    public double? Alpha { get; init; }
    /// <summary>rsLoRA: scale alpha / sqrt(r) (`--rslora`; lora and cola only).</summary>
    public bool Rslora { get; init; }
    /// <summary>This row's settings of the options record by their recorded names, over the grid's <see cref="ExperimentConfig.Options"/>.</summary>
    public JsonObject? Options { get; init; }

    /// <summary>The chain length this row runs.</summary>
    [JsonIgnore]
    public int Links => ChainLength ?? (Kind.Trains() ? TrainerOptions.DefaultChainLength(Kind.TrainingMethod()) : 1);
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
    /// <summary>
    /// Seeds on which every learning rate of a training row runs; the row's other seeds run only the rate
    /// these choose on dev, once all its cells on them have finished (<see cref="Grid.Expand"/>). Null:
    /// every seed runs every rate.
    /// </summary>
    public IReadOnlyList<long>? RateSearchSeeds { get; init; }
    public int Epochs { get; init; } = 5;
    public int NumTrain { get; init; } = 1000;
    public int NumDev { get; init; } = 500;
    public int NumEval { get; init; } = 1000;
    public int BatchSize { get; init; } = 8;
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public string BaseDtype { get; init; } = "fp32";
    /// <summary>lm: tokens per window, BOS included (null: the model's maximum positions).</summary>
    public int? Context { get; init; }
    /// <summary>lm: where dev comes from; configs without the field keep the first study's shuffled split.</summary>
    public TextSplit Split { get; init; }
    /// <summary>A text of the model's own domain (relative to data_root) every cell scores after training: forgetting.</summary>
    public string? SourceData { get; init; }
    /// <summary>Windows of <see cref="SourceData"/> scored (a fixed sample).</summary>
    public int SourceWindows { get; init; } = Recipes.TrainRecipeOptions.DefaultSourceWindows;
    /// <summary>
    /// Any other setting of the run's options record for every cell, by the name result.json's hyperparameters
    /// give it (<see cref="OptionRecords"/>): {"warmup_ratio": 0.06, "lora_dropout": 0.05, "targets": ["all-linear"]}.
    /// The grid's own fields (learning rates, seeds, epochs, ranks, ...) are set with those fields.
    /// </summary>
    public JsonObject? Options { get; init; }
    /// <summary>LoRA and COLA cells log the accumulated delta W's spectrum at every knot (<see cref="TrainerOptions.RecordDeltaSpectra"/>).</summary>
    public bool DeltaSpectra { get; init; }

    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
        Converters = { new EnumNames.Converter() },
    };

    /// <summary>Reads and validates; relative model and data paths resolve against the config's folder.</summary>
    public static ExperimentConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"experiment config not found: {path}", path);
        var config = JsonFile.Read<ExperimentConfig>(path, Json, "experiment config");
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
        void RequirePositive(string field, IEnumerable<double> values)
        {
            foreach (var x in values)
                Require(x > 0 && double.IsFinite(x), $"{field}: {x.ToString(System.Globalization.CultureInfo.InvariantCulture)} is not a positive finite number" +
                    (double.IsInfinity(x) ? " (a number past 1.8e308 reads as infinity)" : ""));
        }
        Require(Model.Length > 0, "field 'model' is required");
        Require(Tasks.Count > 0, "field 'tasks' needs at least one task");
        Require(Methods.Count > 0, "field 'methods' needs at least one method");
        Require(Seeds.Count > 0, "field 'seeds' needs at least one seed");
        Require(LearningRates.Count > 0, "field 'learning_rates' needs at least one learning rate");
        if (RateSearchSeeds is { } search)
        {
            Require(search.Count > 0, "field 'rate_search_seeds' needs at least one seed (or leave it out: every seed runs every rate)");
            var twice = search.GroupBy(s => s).FirstOrDefault(g => g.Count() > 1);
            Require(twice is null, $"field 'rate_search_seeds' lists seed {twice?.Key} twice");
            foreach (var seed in search) Require(Seeds.Contains(seed), $"field 'rate_search_seeds': seed {seed} is not one of 'seeds'");
        }
        // A JSON number beyond double's range (1e999) reads as infinity, which no spec or result can be written with.
        RequirePositive("field 'learning_rates'", LearningRates);
        RequirePositive("field 'alpha'", [Alpha]);
        foreach (var m in Methods)
        {
            Require(m.Name.Length > 0, "every method needs a 'name'");
            Require(m.Kind == MethodKind.Cola || m.Links == 1, $"method '{m.Name}': chain_length {m.ChainLength} needs kind cola");
            Require(m.Kind != MethodKind.Icl || m.Icl > 0, $"method '{m.Name}': kind icl needs icl > 0");
            Require(m.Kind == MethodKind.Cola || (m.Variant == ColaVariant.Paper && m.Knots == KnotPlacement.Fixed),
                $"method '{m.Name}': variant and knots need kind cola");
            Require(m.NumTrain is null or >= 1, $"method '{m.Name}': num_train {m.NumTrain} must be at least 1");
            if (m.LearningRates is { } rates) RequirePositive($"method '{m.Name}': field 'learning_rates'", rates);
            if (m.Alpha is { } alpha) RequirePositive($"method '{m.Name}': field 'alpha'", [alpha]);
            Require(m.Kind.HasChain() || (m.Alpha is null && !m.Rslora), $"method '{m.Name}': alpha and rslora need kind lora or cola");
        }
        Require(Context is null or >= 2, $"field 'context' {Context} must be at least 2");
        Require(Context is null || Tasks.All(t => t.Name.Equals("lm", StringComparison.OrdinalIgnoreCase)),
            "field 'context' applies to the lm task only");
        Require(Split == TextSplit.Shuffled || Tasks.All(t => t.Name.Equals("lm", StringComparison.OrdinalIgnoreCase)),
            $"field 'split' {EnumNames.Name(Split)} applies to the lm task only");
        Require(Methods.Select(m => m.Name).Distinct().Count() == Methods.Count, "method names must be unique");
        var fresh = new Recipes.TrainRecipeOptions { Task = "", Data = "" };
        foreach (var m in Methods) WithOptions(fresh, m, source);
        Require(SourceWindows >= 1, $"field 'source_windows' {SourceWindows} must be at least 1");
        Require(SourceData is null || SourceData.Length > 0, "field 'source_data' must name a file");
        foreach (var t in Tasks) Require(t.Name.Length > 0 && t.Data.Length > 0, "every task needs 'name' and 'data'");
        return this;
    }

    /// <summary>
    /// <paramref name="record"/> with the grid's and then the row's <see cref="Options"/> set. Each must name a
    /// setting of the record that the grid does not set itself, and fit it; the error names <paramref name="source"/>.
    /// </summary>
    public Recipes.TrainRecipeOptions WithOptions(Recipes.TrainRecipeOptions record, MethodSpec method, string source = "experiment config") =>
        Set(Set(record, Options, source, "options"), method.Options, source, $"method '{method.Name}': options");

    static Recipes.TrainRecipeOptions Set(Recipes.TrainRecipeOptions record, JsonObject? options, string source, string where)
    {
        foreach (var (key, value) in options ?? [])
        {
            if (JobSpecJson.Named.Contains(key) || key == "seed")
                throw new InvalidDataException($"{source}: {where}: '{key}' is a field of the grid itself; set it there");
            try
            {
                if (!OptionRecords.TryWith(record, key, value, out record))
                    throw new InvalidDataException($"{source}: {where}: '{key}' is not a setting (the names are those of result.json's hyperparameters)");
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{source}: {where}: '{key}': {e.Message}");
            }
        }
        return record;
    }

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Json);
    public static T Deserialize<T>(string json, string source) => JsonFile.Deserialize<T>(json, source, Json);
}
