// Mirrors transformers' LlamaConfig (configuration_llama.py): field names bind to config.json.
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
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    public string HiddenAct { get; init; } = "silu";
    public int? BosTokenId { get; init; } = 1;
    public int? EosTokenId { get; init; } = 2;
    public int? PadTokenId { get; init; }
    public string? TorchDtype { get; init; }
    public string[]? Architectures { get; init; } = ["LlamaForCausalLM"];

    public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Throws naming the first field whose value cannot describe a Llama model.</summary>
    public LlamaConfig Validate()
    {
        ConfigJson.Require(VocabSize > 0, "vocab_size", VocabSize, "must be positive");
        ConfigJson.Require(HiddenSize > 0, "hidden_size", HiddenSize, "must be positive");
        ConfigJson.Require(IntermediateSize > 0, "intermediate_size", IntermediateSize, "must be positive");
        ConfigJson.Require(NumHiddenLayers > 0, "num_hidden_layers", NumHiddenLayers, "must be positive");
        ConfigJson.Require(NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0,
            "num_attention_heads", NumAttentionHeads, $"must divide hidden_size {HiddenSize}");
        ConfigJson.Require(HeadDim % 2 == 0, "num_attention_heads", NumAttentionHeads, "head dim must be even for rotary embeddings");
        ConfigJson.Require(KeyValueHeads > 0 && NumAttentionHeads % KeyValueHeads == 0,
            "num_key_value_heads", NumKeyValueHeads, $"must divide num_attention_heads {NumAttentionHeads}");
        ConfigJson.Require(MaxPositionEmbeddings > 0, "max_position_embeddings", MaxPositionEmbeddings, "must be positive");
        ConfigJson.Require(RmsNormEps > 0, "rms_norm_eps", RmsNormEps, "must be positive");
        ConfigJson.Require(HiddenAct == "silu", "hidden_act", HiddenAct, "only silu (SwiGLU) is supported");
        return this;
    }

    public static LlamaConfig FromFile(string path) => ConfigJson.ReadValid<LlamaConfig>(path, c => c.Validate());

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
