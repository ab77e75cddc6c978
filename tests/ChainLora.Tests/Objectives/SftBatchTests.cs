using ChainLora.Objectives;
using ChainLora.Tasks;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Objectives;

/// <summary>The sft training batch: right-padded ids, and as targets exactly the next tokens the loss mask marks.</summary>
public sealed class SftBatchTests
{
    [Fact]
    public void Targets_are_the_masked_next_tokens_and_everything_else_is_ignored()
    {
        // ids 10..15: prompt 10 11 12, response 13 14 15 (mask on 13, 14, 15).
        var a = new SftEncoded([10, 11, 12, 13, 14, 15], [false, false, false, true, true, true], 0);
        // A two-turn conversation: masked 21 and 24 only; shorter, so padded.
        var b = new SftEncoded([20, 21, 22, 23, 24], [false, true, false, false, true], 0);
        var data = TaskTrainingData.Sft([a, b], batchSize: 2, seed: 0, CPU, padId: 7);
        var batch = Assert.IsType<LmBatch>(Assert.Single(data.Epoch(0)));
        var inputs = batch.InputIds.data<long>().ToArray();
        var targets = batch.Targets.data<long>().ToArray();
        Assert.Equal([2L, 5L], batch.InputIds.shape);
        Assert.Equal([2L, 5L], batch.Targets.shape);
        // The epoch's seeded order may put either row first; read each by its first id.
        var rowA = inputs[0] == 10 ? 0 : 1;
        var rowB = 1 - rowA;
        Assert.Equal(new long[] { 10, 11, 12, 13, 14 }, inputs[(rowA * 5)..(rowA * 5 + 5)]);
        Assert.Equal(new long[] { -100, -100, 13, 14, 15 }, targets[(rowA * 5)..(rowA * 5 + 5)]);
        Assert.Equal(new long[] { 20, 21, 22, 23, 7 }, inputs[(rowB * 5)..(rowB * 5 + 5)]);
        Assert.Equal(new long[] { 21, -100, -100, 24, -100 }, targets[(rowB * 5)..(rowB * 5 + 5)]);
    }
}
