// Mirrors PEFT's LoraConfig (peft/tuners/lora/config.py) for the options COLA needs.
using System.Text.Json.Serialization;
using ChainLora.IO;

namespace ChainLora.Lora;

/// <summary>Which biases train alongside LoRA, with PEFT's meanings.</summary>
public enum LoraBias
{
    /// <summary>No bias trains.</summary>
    None,
    /// <summary>Every bias of the model trains.</summary>
    All,
    /// <summary>Only the biases of the adapted layers train (the paper's OPT setting).</summary>
    [JsonStringEnumMemberName("lora_only")]
    LoraOnly,
}

/// <summary>How A is initialised at the start of each link; B always starts at zero.</summary>
public enum LoraInit
{
    /// <summary>Kaiming-uniform with a = sqrt(5), PEFT's default (torch.nn.Linear's init).</summary>
    Kaiming,
    /// <summary>Normal with std 1/r, PEFT's init_lora_weights="gaussian".</summary>
    Gaussian,
}

public sealed record LoraConfig
{
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    [RecordedAs("lora_dropout")]
    public double Dropout { get; init; }
    /// <summary>
    /// Module names to adapt: an exact dotted path or a final-name suffix ("q_proj"); <see cref="AllLinear"/>
    /// alone for every linear layer but the LM head; empty for the model family's defaults (<see cref="Targets"/>).
    /// </summary>
    [RecordedAs("targets")]
    public IReadOnlyList<string> TargetModules { get; init; } = [];
    [RecordedAs("lora_bias")]
    public LoraBias Bias { get; init; } = LoraBias.None;
    [RecordedAs("lora_init"), RecordedWhenSet]
    public LoraInit Init { get; init; } = LoraInit.Kaiming;
    /// <summary>rsLoRA: scale by alpha / sqrt(r) instead of alpha / r.</summary>
    [RecordedAs("use_rslora")]
    public bool UseRsLora { get; init; }

    /// <summary>The scale applied to B A at a given rank and alpha.</summary>
    public double ScalingFor(int rank, double alpha) => UseRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;

    /// <summary>Throws naming the option and its bad value.</summary>
    public LoraConfig Validate()
    {
        if (Rank < 1) throw new ArgumentException($"LoRA rank {Rank}: must be at least 1");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new ArgumentException($"LoRA alpha {Alpha}: must be a positive number");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoRA dropout {Dropout}: must be in [0, 1)");
        if (TargetModules.Contains(AllLinear) && TargetModules.Count > 1)
            throw new ArgumentException($"LoRA target modules [{string.Join(", ", TargetModules)}]: {AllLinear} stands alone");
        foreach (var t in TargetModules)
            if (string.IsNullOrWhiteSpace(t) || t.StartsWith('.') || t.EndsWith('.'))
                throw new ArgumentException($"LoRA target module '{t}': expected a module name such as q_proj");
        return this;
    }

    /// <summary>PEFT's shorthand for every linear layer except the output layer (peft/tuners/tuners_utils.py).</summary>
    public const string AllLinear = "all-linear";

    /// <summary>
    /// Per model type: the default targets (PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, which the
    /// paper's q_proj, v_proj follow; PEFT has no entry for phi3, whose fused qkv_proj holds q, k and v) and the
    /// linear layers of each decoder layer, by their Hugging Face names.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, ModelTargets> Targets = new Dictionary<string, ModelTargets>
    {
        ["llama"] = ModelTargets.LlamaLike,
        ["mistral"] = ModelTargets.LlamaLike,
        ["qwen2"] = ModelTargets.LlamaLike,
        ["qwen3"] = ModelTargets.LlamaLike,
        ["gemma"] = ModelTargets.LlamaLike,
        ["phi3"] = new(["qkv_proj"], ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
        ["opt"] = new(["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]),
    };

    public static IReadOnlyList<string> DefaultTargetsFor(string modelType) =>
        Targets.TryGetValue(modelType, out var t) ? t.Default
            : throw new ArgumentException($"no default LoRA targets for model type '{modelType}'; pass target modules explicitly");

    /// <summary>This config with the family defaults of <paramref name="modelType"/> when it names no targets.</summary>
    public LoraConfig WithTargetsFor(string modelType) =>
        TargetModules.Count > 0 ? this : this with { TargetModules = DefaultTargetsFor(modelType) };

    /// <summary>The targets table as one line per group of model types, for --help.</summary>
    public static IEnumerable<string> TargetsHelp() =>
        Targets.GroupBy(t => t.Value).Select(g =>
            $"{string.Join(", ", g.Select(t => t.Key))}: {string.Join(" ", g.Key.Linear)} (default {string.Join(",", g.Key.Default)})");

    /// <summary>Parses "none", "all", "lora_only".</summary>
    public static LoraBias ParseBias(string text) => EnumNames.Parse<LoraBias>(text, "LoRA bias");

    public static LoraInit ParseInit(string text) => EnumNames.Parse<LoraInit>(text, "LoRA init");
}

/// <summary>A model type's default LoRA targets and the linear layers of its decoder layers.</summary>
public sealed record ModelTargets(IReadOnlyList<string> Default, IReadOnlyList<string> Linear)
{
    /// <summary>Llama and the families transformers derives from it with separate projections.</summary>
    public static readonly ModelTargets LlamaLike =
        new(["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
}
