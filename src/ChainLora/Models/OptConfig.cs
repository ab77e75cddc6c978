// Mirrors transformers' OPTConfig (configuration_opt.py): field names bind to config.json.
namespace ChainLora.Models;

public sealed record OptConfig
{
    public string ModelType { get; init; } = "opt";
    public int VocabSize { get; init; } = 50272;
    public int HiddenSize { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int FfnDim { get; init; } = 3072;
    public int NumAttentionHeads { get; init; } = 12;
    public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary>Pre-LN (true for every OPT except 350m) or post-LN.</summary>
    public bool DoLayerNormBefore { get; init; } = true;
    /// <summary>Defaults to hidden_size; differs only for OPT-350m (512 vs 1024).</summary>
    public int? WordEmbedProjDim { get; init; }
    public bool EnableBias { get; init; } = true;
    public bool LayerNormElementwiseAffine { get; init; } = true;
    public string ActivationFunction { get; init; } = "relu";
    [System.Text.Json.Serialization.JsonPropertyName("_remove_final_layer_norm")]
    public bool RemoveFinalLayerNorm { get; init; }
    public int PadTokenId { get; init; } = 1;
    public int BosTokenId { get; init; } = 2;
    public int EosTokenId { get; init; } = 2;
    public bool TieWordEmbeddings { get; init; } = true;
    public string? TorchDtype { get; init; }
    public string[]? Architectures { get; init; } = ["OPTForCausalLM"];

    /// <summary>HF's OPTLearnedPositionalEmbedding shifts position ids by 2 (a fairseq legacy).</summary>
    public const int PositionOffset = 2;

    public int EmbedDim => WordEmbedProjDim ?? HiddenSize;
    public int HeadDim => HiddenSize / NumAttentionHeads;
    public bool HasFinalLayerNorm => DoLayerNormBefore && !RemoveFinalLayerNorm;

    public OptConfig Validate()
    {
        ConfigJson.Require(VocabSize > 0, "vocab_size", VocabSize, "must be positive");
        ConfigJson.Require(HiddenSize > 0, "hidden_size", HiddenSize, "must be positive");
        ConfigJson.Require(FfnDim > 0, "ffn_dim", FfnDim, "must be positive");
        ConfigJson.Require(NumHiddenLayers > 0, "num_hidden_layers", NumHiddenLayers, "must be positive");
        ConfigJson.Require(NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0,
            "num_attention_heads", NumAttentionHeads, $"must divide hidden_size {HiddenSize}");
        ConfigJson.Require(EmbedDim > 0, "word_embed_proj_dim", WordEmbedProjDim, "must be positive");
        ConfigJson.Require(MaxPositionEmbeddings > 0, "max_position_embeddings", MaxPositionEmbeddings, "must be positive");
        ConfigJson.Require(ActivationFunction == "relu", "activation_function", ActivationFunction, "only relu is supported");
        ConfigJson.Require(TieWordEmbeddings, "tie_word_embeddings", TieWordEmbeddings, "OPT checkpoints tie lm_head to embed_tokens");
        return this;
    }

    public static OptConfig FromFile(string path) => ConfigJson.ReadValid<OptConfig>(path, c => c.Validate());

    public static OptConfig Opt125m => new();
    public static OptConfig Opt350m => new()
    {
        HiddenSize = 1024, NumHiddenLayers = 24, FfnDim = 4096, NumAttentionHeads = 16,
        DoLayerNormBefore = false, WordEmbedProjDim = 512,
    };
    public static OptConfig Opt1_3b => new()
    {
        HiddenSize = 2048, NumHiddenLayers = 24, FfnDim = 8192, NumAttentionHeads = 32,
    };
}
