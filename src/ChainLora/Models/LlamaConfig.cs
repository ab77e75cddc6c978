// Mirrors transformers' LlamaConfig (configuration_llama.py) and the configs of the families
// transformers derives from Llama (configuration_{mistral,qwen2,qwen3,gemma,phi3}.py): field
// names bind to config.json. Which fields a family reads, its defaults and what its code fixes are
// in LlamaFamily.cs; a field that changes the maths is honoured or refused, never ignored.
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ChainLora.Models;

public sealed record LlamaConfig
{
    public string ModelType { get; init; } = "llama";
    public int VocabSize { get; init; } = 32000;
    public int HiddenSize { get; init; } = 4096;
    public int IntermediateSize { get; init; } = 11008;
    public int NumHiddenLayers { get; init; } = 32;
    public int NumAttentionHeads { get; init; } = 32;
    /// <summary>Null means multi-head attention (as many KV heads as query heads), as in HF.</summary>
    public int? NumKeyValueHeads { get; init; }
    /// <summary>Null means hidden_size / num_attention_heads (Qwen3, Gemma and Mistral-Nemo set others).</summary>
    public int? HeadDim { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Phi-3: the share of each head that is rotated (Phi-4-mini: 0.75).</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;
    /// <summary>Phi-3: the pretraining context; read by longrope only, which is refused.</summary>
    public int? OriginalMaxPositionEmbeddings { get; init; }
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Llama, Qwen3 and Gemma: a bias on q, k, v and o (Qwen2 always has one on q, k and v).</summary>
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    public string HiddenAct { get; init; } = "silu";
    /// <summary>Gemma: the MLP's activation; null means gelu_pytorch_tanh (transformers' GemmaConfig documents hidden_act as legacy).</summary>
    public string? HiddenActivation { get; init; }
    /// <summary>Mistral and Phi-3: each query sees the last sliding_window keys (itself included); null sees all.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Qwen2 and Qwen3: sliding_window applies only when this is true (then refused: see LlamaFamily).</summary>
    public bool UseSlidingWindow { get; init; }
    public int? MaxWindowLayers { get; init; }
    public string[]? LayerTypes { get; init; }
    /// <summary>Dropout on the attention probabilities while training: only 0 is implemented.</summary>
    public double AttentionDropout { get; init; }
    /// <summary>Phi-3's dropout on the embeddings and on each residual branch while training: only 0 is implemented.</summary>
    public double EmbdPdrop { get; init; }
    public double ResidPdrop { get; init; }
    /// <summary>Llama: tensor-parallel slices of pretraining; the sliced matmuls compute the same product.</summary>
    public int PretrainingTp { get; init; } = 1;
    /// <summary>Token ids as written (an int, or a list of EOS ids in Llama 3 configs); the tokenizer reads them.</summary>
    public JsonElement? BosTokenId { get; init; } = ConfigJson.Number(1);
    public JsonElement? EosTokenId { get; init; } = ConfigJson.Number(2);
    public JsonElement? PadTokenId { get; init; }
    public string? TorchDtype { get; init; }
    public string[]? Architectures { get; init; } = ["LlamaForCausalLM"];

    /// <summary>What the model_type's transformers code fixes and reads (LlamaFamily.cs).</summary>
    [JsonIgnore] public LlamaFamily Family => LlamaFamily.For(ModelType);
    [JsonIgnore] public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;
    [JsonIgnore] public int HeadSize => HeadDim ?? HiddenSize / NumAttentionHeads;
    /// <summary>Dims of each head that are rotated: head_dim x partial_rotary_factor, as transformers truncates it.</summary>
    [JsonIgnore] public int RotaryDim => (int)(HeadSize * PartialRotaryFactor);
    /// <summary>The MLP's activation as the family's transformers code picks it.</summary>
    [JsonIgnore] public string Activation => Family.ReadsHiddenActivation ? HiddenActivation ?? "gelu_pytorch_tanh" : HiddenAct;
    /// <summary>The keys each query sees (itself included), or null for all: sliding_window where the family applies it.</summary>
    [JsonIgnore] public int? AttentionWindow => Family.SlidingWindowNeedsUse && !UseSlidingWindow ? null : SlidingWindow;

    /// <summary>Throws naming the first field whose value cannot describe a model of this family.</summary>
    public LlamaConfig Validate()
    {
        var family = Family;
        ConfigJson.Require(VocabSize > 0, "vocab_size", VocabSize, "must be positive");
        ConfigJson.Require(HiddenSize > 0, "hidden_size", HiddenSize, "must be positive");
        ConfigJson.Require(IntermediateSize > 0, "intermediate_size", IntermediateSize, "must be positive");
        ConfigJson.Require(NumHiddenLayers > 0, "num_hidden_layers", NumHiddenLayers, "must be positive");
        ConfigJson.Require(NumAttentionHeads > 0, "num_attention_heads", NumAttentionHeads, "must be positive");
        if (HeadDim is null)
            ConfigJson.Require(HiddenSize % NumAttentionHeads == 0, "num_attention_heads", NumAttentionHeads, $"must divide hidden_size {HiddenSize}");
        ConfigJson.Require(HeadSize > 0 && HeadSize % 2 == 0, "head_dim", HeadSize, "must be positive and even for rotary embeddings");
        ConfigJson.Require(KeyValueHeads > 0 && NumAttentionHeads % KeyValueHeads == 0,
            "num_key_value_heads", NumKeyValueHeads, $"must divide num_attention_heads {NumAttentionHeads}");
        ConfigJson.Require(MaxPositionEmbeddings > 0, "max_position_embeddings", MaxPositionEmbeddings, "must be positive");
        ConfigJson.Require(RmsNormEps > 0, "rms_norm_eps", RmsNormEps, "must be positive");
        ConfigJson.Require(RopeTheta > 0 && double.IsFinite(RopeTheta), "rope_theta", RopeTheta, "must be a positive number");
        ConfigJson.Require(PartialRotaryFactor > 0 && PartialRotaryFactor <= 1, "partial_rotary_factor", PartialRotaryFactor, "must be in (0, 1]");
        ConfigJson.Require(RotaryDim > 0 && RotaryDim % 2 == 0, "partial_rotary_factor", PartialRotaryFactor, $"rotates {RotaryDim} dims of {HeadSize}: must be a positive even number");
        ConfigJson.Require(HiddenAct == "silu" || family.ReadsHiddenActivation, "hidden_act", HiddenAct, "only silu (SwiGLU) is supported");
        if (family.ReadsHiddenActivation)
        {
            ConfigJson.Require(Activation is "gelu_pytorch_tanh" or "gelu_new" or "gelu", "hidden_activation", HiddenActivation,
                "Gemma's MLP is gated by gelu_pytorch_tanh (or gelu, gelu_new)");
            ConfigJson.Require(HiddenAct is "gelu_pytorch_tanh" or "gelu_new" or "gelu", "hidden_act", HiddenAct,
                "a GELU (the activation itself comes from hidden_activation)");
        }
        ConfigJson.Require(SlidingWindow is null or > 0, "sliding_window", SlidingWindow, "must be positive");
        // Qwen2 / Qwen3 put sliding layers after max_window_layers, but transformers versions disagree on
        // which layers and kernels apply it; no released checkpoint turns it on.
        ConfigJson.Require(!UseSlidingWindow, "use_sliding_window", UseSlidingWindow, "sliding-window layers of Qwen models are not supported");
        ConfigJson.Require(LayerTypes is null || LayerTypes.All(t => t == "full_attention"), "layer_types",
            LayerTypes is null ? null : $"[{string.Join(", ", LayerTypes)}]", "only full_attention layers are supported");
        ConfigJson.Require(LayerTypes is null || LayerTypes.Length == NumHiddenLayers, "layer_types", LayerTypes?.Length,
            $"must list num_hidden_layers = {NumHiddenLayers} layers");
        ConfigJson.Require(AttentionDropout == 0, "attention_dropout", AttentionDropout, "attention dropout is not implemented (only 0)");
        ConfigJson.Require(EmbdPdrop == 0, "embd_pdrop", EmbdPdrop, "embedding dropout is not implemented (only 0)");
        ConfigJson.Require(ResidPdrop == 0, "resid_pdrop", ResidPdrop, "residual dropout is not implemented (only 0)");
        ConfigJson.Require(!AttentionBias || family.ReadsAttentionBias, "attention_bias", AttentionBias, $"{ModelType} has no attention biases");
        ConfigJson.Require(!MlpBias || family.ModelType == "llama", "mlp_bias", MlpBias, $"{ModelType} has no MLP biases");
        ConfigJson.Require(RopeScaling is null || family.ModelType != "phi3", "rope_scaling", RopeScaling?.TypeName,
            "Phi-3 scales rope by longrope only, which is not supported");
        RopeScaling?.Validate();
        return this;
    }

    /// <summary>
    /// config.json text with the fields the family's transformers code reads, and no others; head_dim
    /// written resolved (transformers' Qwen3 and Gemma configs take an explicit null for it literally).
    /// </summary>
    public string ToJson()
    {
        var json = JsonNode.Parse(ConfigJson.Write(this with { HeadDim = HeadSize }))!.AsObject();
        foreach (var key in json.Select(p => p.Key).Where(k => !Family.Fields.Contains(k)).ToList()) json.Remove(key);
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>A config.json of any Llama-derived family (llama, mistral, qwen2, qwen3, gemma, phi3), refused by field name where it cannot be honoured.</summary>
    public static LlamaConfig FromFile(string path)
    {
        var type = ConfigJson.ModelType(path);
        if (!LlamaFamily.Contains(type))
            throw new InvalidDataException($"{path}: config field 'model_type' = {type}: not a Llama-derived family ({string.Join(", ", LlamaFamily.ModelTypes)})");
        var family = LlamaFamily.For(type);
        return ConfigJson.ReadStrict(path, family.Defaults, family.Fields, c => c.Validate());
    }

    /// <summary>The config llama2.c's model.py implies (RMSNorm eps 1e-5, theta 10000).</summary>
    public static LlamaConfig FromLlama2c(IO.Llama2cHeader h) => new LlamaConfig
    {
        VocabSize = h.VocabSize, HiddenSize = h.Dim, IntermediateSize = h.HiddenDim, NumHiddenLayers = h.NumLayers,
        NumAttentionHeads = h.NumHeads, NumKeyValueHeads = h.NumKvHeads, MaxPositionEmbeddings = h.SeqLen,
        RmsNormEps = 1e-5, TieWordEmbeddings = h.SharedClassifier,
    }.Validate();

    /// <summary>Llama-2-7B's published config (for manifests and benchmarks; no weights).</summary>
    public static LlamaConfig Llama2_7B => new()
    {
        VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 11008, NumHiddenLayers = 32,
        NumAttentionHeads = 32, NumKeyValueHeads = 32, MaxPositionEmbeddings = 4096, RmsNormEps = 1e-5,
    };
}
