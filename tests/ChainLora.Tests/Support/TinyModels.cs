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
        {
            var ids = TinyModels.Tokens(seed * 1000 + i / repeatEach, batchSize, length);
            var targets = cat([ids[.., 1..], full(batchSize, 1, -100L, dtype: ScalarType.Int64)], 1);
            yield return new LmBatch(ids, targets);
        }
    }
}
