// A model's size from its config alone, before anything is allocated: what the memory budget
// (Runtime/MemoryBudget) compares with the memory available.
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>Elements of a model's matrices and embeddings (stored in the storage dtype) and of its vectors (norms and biases).</summary>
public readonly record struct ParameterCount(long Matrices, long Vectors)
{
    public long Total => Matrices + Vectors;

    /// <summary>Bytes with matrices in <paramref name="dtype"/>; vectors are counted as fp32, the most they take.</summary>
    public long Bytes(ScalarType dtype) => Matrices * (dtype == ScalarType.Float32 ? 4 : 2) + Vectors * 4;

    /// <summary>The parameters a model of <paramref name="config"/> (a LlamaConfig or an OptConfig) holds.</summary>
    public static ParameterCount Of(object config) => config switch
    {
        LlamaConfig c => Llama(c),
        OptConfig c => Opt(c),
        _ => throw new ArgumentException($"unsupported config type {config.GetType().Name}"),
    };

    static ParameterCount Llama(LlamaConfig c)
    {
        var family = c.Family;
        long h = c.HiddenSize, i = c.IntermediateSize, hd = c.HeadSize, layers = c.NumHiddenLayers, v = c.VocabSize;
        long q = c.NumAttentionHeads * hd, kv = c.KeyValueHeads * hd;
        var perLayer = 2 * h * q + 2 * kv * h + 3 * h * i;   // fused projections hold the same rows
        var vectorsPerLayer = 2 * h + (family.QkvBias || c.AttentionBias ? q + 2 * kv : 0) + (c.AttentionBias ? h : 0)
            + (c.MlpBias ? 2 * i + h : 0) + (family.QkNorm ? 2 * hd : 0);
        return new(v * h * (c.TieWordEmbeddings ? 1 : 2) + layers * perLayer, layers * vectorsPerLayer + h);
    }

    static ParameterCount Opt(OptConfig c)
    {
        long h = c.HiddenSize, e = c.EmbedDim, f = c.FfnDim, layers = c.NumHiddenLayers, v = c.VocabSize;
        // OPT always ties lm_head to embed_tokens (OptConfig.Validate).
        var matrices = v * e + (c.MaxPositionEmbeddings + OptConfig.PositionOffset) * h
            + (e != h ? 2 * e * h : 0) + layers * (4 * h * h + 2 * h * f);
        var norms = c.LayerNormElementwiseAffine ? 2 * h : 0;
        var vectorsPerLayer = 2 * norms + (c.EnableBias ? 5 * h + f : 0);
        return new(matrices, layers * vectorsPerLayer + (c.HasFinalLayerNorm ? norms : 0));
    }

    /// <summary>
    /// A lower bound on the activation memory of one training step on a batch of
    /// <paramref name="tokens"/> positions: backward needs at least each decoder layer's fp32 input
    /// (kept even under gradient checkpointing) and the final hidden states.
    /// </summary>
    public static long ActivationBytesLowerBound(long tokens, CausalLM model) =>
        (long)Math.Min(long.MaxValue, (double)tokens * model.HiddenSize * (model.NumLayers + 1) * sizeof(float));
}
