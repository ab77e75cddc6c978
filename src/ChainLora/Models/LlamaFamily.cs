// The families transformers derives from Llama (models/*/modular_*.py subclass the Llama modules),
// as a table: what each family's code fixes, which config.json fields its config class reads, and
// its defaults for the fields a config.json leaves out (each config class's __init__ defaults).
namespace ChainLora.Models;

public sealed record LlamaFamily
{
    public required string ModelType { get; init; }
    /// <summary>transformers' causal-LM class, written to architectures on export.</summary>
    public required string Architecture { get; init; }
    /// <summary>
    /// config.json fields the family's transformers code reads (its config class, or getattr in its modeling,
    /// as head_dim in Qwen2 and Phi-3); any other (outside ConfigJson.InertFields) is refused.
    /// </summary>
    public required IReadOnlySet<string> Fields { get; init; }
    /// <summary>The family's config class defaults, for fields the file leaves out.</summary>
    public required LlamaConfig Defaults { get; init; }
    /// <summary>Qwen2: q, k and v always carry a bias, o never (modular_qwen2.py).</summary>
    public bool QkvBias { get; init; }
    /// <summary>attention_bias puts a bias on q, k, v and o (Llama, Qwen3, Gemma).</summary>
    public bool ReadsAttentionBias { get; init; }
    /// <summary>Qwen3: RMSNorm over each head of q and k (q_norm, k_norm) before the rotation.</summary>
    public bool QkNorm { get; init; }
    /// <summary>Gemma: RMSNorm scales by (1 + weight), and the embeddings by sqrt(hidden_size).</summary>
    public bool GemmaNorms { get; init; }
    /// <summary>Gemma: the MLP's activation comes from hidden_activation, not hidden_act.</summary>
    public bool ReadsHiddenActivation { get; init; }
    /// <summary>Phi-3: one qkv_proj for q, k, v and one gate_up_proj for gate and up (HF names).</summary>
    public bool FusedProjections { get; init; }
    /// <summary>Qwen2 and Qwen3: sliding_window counts only under use_sliding_window (configuration_qwen2.py).</summary>
    public bool SlidingWindowNeedsUse { get; init; }

    static readonly string[] Common =
    [
        "model_type", "architectures", "torch_dtype", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
        "tie_word_embeddings", "hidden_act", "attention_dropout", "bos_token_id", "eos_token_id", "pad_token_id",
    ];

    static HashSet<string> FieldsWith(params string[] more) => [.. Common, .. more];

    public static readonly IReadOnlyList<LlamaFamily> All =
    [
        new()
        {
            ModelType = "llama", Architecture = "LlamaForCausalLM", ReadsAttentionBias = true,
            Fields = FieldsWith("head_dim", "attention_bias", "mlp_bias", "pretraining_tp"),
            Defaults = new LlamaConfig(),
        },
        new()
        {
            ModelType = "mistral", Architecture = "MistralForCausalLM",
            Fields = FieldsWith("head_dim", "sliding_window"),
            Defaults = new LlamaConfig
            {
                ModelType = "mistral", IntermediateSize = 14336, NumKeyValueHeads = 8, MaxPositionEmbeddings = 4096 * 32,
                SlidingWindow = 4096, Architectures = ["MistralForCausalLM"],
            },
        },
        new()
        {
            ModelType = "qwen2", Architecture = "Qwen2ForCausalLM", QkvBias = true, SlidingWindowNeedsUse = true,
            Fields = FieldsWith("head_dim", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types"),
            Defaults = Qwen with { ModelType = "qwen2", Architectures = ["Qwen2ForCausalLM"] },
        },
        new()
        {
            ModelType = "qwen3", Architecture = "Qwen3ForCausalLM", ReadsAttentionBias = true, QkNorm = true, SlidingWindowNeedsUse = true,
            Fields = FieldsWith("head_dim", "attention_bias", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types"),
            Defaults = Qwen with { ModelType = "qwen3", HeadDim = 128, Architectures = ["Qwen3ForCausalLM"] },
        },
        new()
        {
            ModelType = "gemma", Architecture = "GemmaForCausalLM", ReadsAttentionBias = true, GemmaNorms = true, ReadsHiddenActivation = true,
            Fields = FieldsWith("head_dim", "attention_bias", "hidden_activation"),
            Defaults = new LlamaConfig
            {
                ModelType = "gemma", VocabSize = 256000, HiddenSize = 3072, IntermediateSize = 24576, NumHiddenLayers = 28,
                NumAttentionHeads = 16, NumKeyValueHeads = 16, HeadDim = 256, HiddenAct = "gelu_pytorch_tanh", MaxPositionEmbeddings = 8192,
                PadTokenId = ConfigJson.Number(0), EosTokenId = ConfigJson.Number(1), BosTokenId = ConfigJson.Number(2),
                TieWordEmbeddings = true, Architectures = ["GemmaForCausalLM"],
            },
        },
        new()
        {
            ModelType = "phi3", Architecture = "Phi3ForCausalLM", FusedProjections = true,
            Fields = FieldsWith("head_dim", "sliding_window", "original_max_position_embeddings", "partial_rotary_factor", "embd_pdrop",
                "resid_pdrop", "attention_bias"),
            Defaults = new LlamaConfig
            {
                ModelType = "phi3", VocabSize = 32064, HiddenSize = 3072, IntermediateSize = 8192, MaxPositionEmbeddings = 4096,
                OriginalMaxPositionEmbeddings = 4096, RmsNormEps = 1e-5, EosTokenId = ConfigJson.Number(32000),
                PadTokenId = ConfigJson.Number(32000), Architectures = ["Phi3ForCausalLM"],
            },
        },
    ];

    static LlamaConfig Qwen => new()
    {
        VocabSize = 151936, IntermediateSize = 22016, NumKeyValueHeads = 32, MaxPositionEmbeddings = 32768,
        SlidingWindow = 4096, MaxWindowLayers = 28, BosTokenId = null, EosTokenId = null,
    };

    /// <summary>The model types of <see cref="All"/>.</summary>
    public static IEnumerable<string> ModelTypes => All.Select(f => f.ModelType);

    /// <summary>The family of <paramref name="modelType"/>; throws naming it when transformers does not derive it from Llama here.</summary>
    public static LlamaFamily For(string modelType) =>
        All.FirstOrDefault(f => f.ModelType == modelType)
        ?? throw new ArgumentException($"config field 'model_type' = {modelType}: not a supported Llama-architecture family ({string.Join(", ", ModelTypes)})");

    public static bool Contains(string modelType) => All.Any(f => f.ModelType == modelType);
}
