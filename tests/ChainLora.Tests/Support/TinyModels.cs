using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests;

/// <summary>Small random models and data for property tests.</summary>
static class TinyModels
{
    public static LlamaConfig LlamaConfig => new()
    {
        VocabSize = 64, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5,
    };

    public static OptConfig OptConfig => new()
    {
        VocabSize = 64, HiddenSize = 32, FfnDim = 64, NumHiddenLayers = 2, NumAttentionHeads = 4, MaxPositionEmbeddings = 64,
    };

    public static LlamaForCausalLM Llama(long seed = 1, ScalarType dtype = ScalarType.Float32)
    {
        manual_seed(seed);
        return new LlamaForCausalLM(LlamaConfig, dtype);
    }

    public static OptForCausalLM Opt(long seed = 1)
    {
        manual_seed(seed);
        return new OptForCausalLM(OptConfig);
    }

    public static Tensor Tokens(long seed, int batch = 2, int length = 12)
    {
        using var g = new Generator((ulong)seed);
        return randint(3, 64, [batch, length], generator: g, dtype: ScalarType.Int64, device: CPU);
    }
}

/// <summary>Next-token prediction on fixed random sequences, a fixed order per epoch.</summary>
/// <summary><paramref name="repeatEach"/> yields every batch that many times in a row (fresh tensors each time).</summary>
sealed class RandomLmData(int batches, long seed = 7, int batchSize = 2, int length = 12, int repeatEach = 1) : ITrainingData
{
    public int BatchesPerEpoch => batches * repeatEach;

    public IEnumerable<TrainingBatch> Epoch(int epoch)
    {
        for (var i = 0; i < batches * repeatEach; i++)
            yield return NextToken(TinyModels.Tokens(seed * 1000 + i / repeatEach, batchSize, length));
    }

    /// <summary>Each position of <paramref name="ids"/> (B, T) learns the token after it; the last learns nothing.</summary>
    public static LmBatch NextToken(Tensor ids) =>
        new(ids, cat([ids[.., 1..], full(ids.shape[0], 1, -100L, dtype: ScalarType.Int64)], 1));
}

/// <summary>Next-token prediction on the given batches of token ids (B, T), in the same order every epoch.</summary>
sealed class FixedLmData(IReadOnlyList<Tensor> batches) : ITrainingData
{
    public int BatchesPerEpoch => batches.Count;

    public IEnumerable<TrainingBatch> Epoch(int epoch) => batches.Select(ids => RandomLmData.NextToken(ids.clone()));
}

/// <summary>
/// Published configs of one model per Llama-derived family (their config.json sizes, no weights):
/// for the size and manifest tests, where transformers' parameter counts and names are known.
/// </summary>
static class FamilyConfigs
{
    public static readonly IReadOnlyDictionary<string, LlamaConfig> Published = new Dictionary<string, LlamaConfig>
    {
        ["llama-3.2-1b"] = new()
        {
            VocabSize = 128256, HiddenSize = 2048, IntermediateSize = 8192, NumHiddenLayers = 16, NumAttentionHeads = 32, NumKeyValueHeads = 8,
            HeadDim = 64, MaxPositionEmbeddings = 131072, RmsNormEps = 1e-5, RopeTheta = 500000, TieWordEmbeddings = true,
            RopeScaling = new RopeScaling { RopeType = "llama3", Factor = 32, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 8192 },
        },
        ["qwen2.5-0.5b"] = LlamaFamily.For("qwen2").Defaults with
        {
            HiddenSize = 896,
            IntermediateSize = 4864,
            NumHiddenLayers = 24,
            NumAttentionHeads = 14,
            NumKeyValueHeads = 2,
            RopeTheta = 1000000,
            TieWordEmbeddings = true,
            SlidingWindow = 32768,
            MaxWindowLayers = 24,
        },
        ["qwen3-0.6b"] = LlamaFamily.For("qwen3").Defaults with
        {
            HiddenSize = 1024,
            IntermediateSize = 3072,
            NumHiddenLayers = 28,
            NumAttentionHeads = 16,
            NumKeyValueHeads = 8,
            HeadDim = 128,
            MaxPositionEmbeddings = 40960,
            RopeTheta = 1000000,
            TieWordEmbeddings = true,
            SlidingWindow = null,
        },
        ["mistral-7b-v0.3"] = LlamaFamily.For("mistral").Defaults with
        {
            VocabSize = 32768,
            MaxPositionEmbeddings = 32768,
            RmsNormEps = 1e-5,
            RopeTheta = 1000000,
            SlidingWindow = null,
        },
        ["gemma-2b"] = LlamaFamily.For("gemma").Defaults with
        {
            HiddenSize = 2048,
            IntermediateSize = 16384,
            NumHiddenLayers = 18,
            NumAttentionHeads = 8,
            NumKeyValueHeads = 1,
            HeadDim = 256,
            HiddenActivation = "gelu_pytorch_tanh",
        },
        ["phi-3-mini-4k"] = LlamaFamily.For("phi3").Defaults with { NumKeyValueHeads = 32, SlidingWindow = 2047 },
    };
}
