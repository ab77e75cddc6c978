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
    public double Dropout { get; init; }
    /// <summary>Module names to adapt: an exact dotted path or a final-name suffix ("q_proj").</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];
    public LoraBias Bias { get; init; } = LoraBias.None;
    public LoraInit Init { get; init; } = LoraInit.Kaiming;
    /// <summary>rsLoRA: scale by alpha / sqrt(r) instead of alpha / r.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>The scale applied to B A at a given rank and alpha.</summary>
    public double ScalingFor(int rank, double alpha) => UseRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;

    /// <summary>Throws naming the option and its bad value.</summary>
    public LoraConfig Validate()
    {
        if (Rank < 1) throw new ArgumentException($"LoRA rank {Rank}: must be at least 1");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new ArgumentException($"LoRA alpha {Alpha}: must be a positive number");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoRA dropout {Dropout}: must be in [0, 1)");
        if (TargetModules.Count == 0) throw new ArgumentException("LoRA target modules: at least one is needed");
        foreach (var t in TargetModules)
            if (string.IsNullOrWhiteSpace(t) || t.StartsWith('.') || t.EndsWith('.'))
                throw new ArgumentException($"LoRA target module '{t}': expected a module name such as q_proj");
        return this;
    }

    /// <summary>Default targets per architecture (the paper: q_proj and v_proj for OPT and Llama).</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> DefaultTargets =
        new Dictionary<string, IReadOnlyList<string>>
        {
            ["llama"] = ["q_proj", "v_proj"],
            ["opt"] = ["q_proj", "v_proj"],
        };

    public static IReadOnlyList<string> DefaultTargetsFor(string modelType) =>
        DefaultTargets.TryGetValue(modelType, out var t) ? t
            : throw new ArgumentException($"no default LoRA targets for model type '{modelType}'; pass target modules explicitly");

    /// <summary>Parses "none", "all", "lora_only".</summary>
    public static LoraBias ParseBias(string text) => EnumNames.Parse<LoraBias>(text, "LoRA bias");

    public static LoraInit ParseInit(string text) => EnumNames.Parse<LoraInit>(text, "LoRA init");
}
