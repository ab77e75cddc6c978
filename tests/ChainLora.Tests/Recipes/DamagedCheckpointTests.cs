namespace ChainLora.Tests.Recipes;

/// <summary>
/// `train --resume` from a damaged checkpoint in a real `chainlora` process, for damage that used to
/// reach native code and end the process there (stories260K's lm task; skip without ../shared).
/// </summary>
public sealed class DamagedCheckpointTests : TempFolderTest
{
    // 8 windows, batch 4, 2 epochs: 4 steps, a checkpoint after each.
    static string[] Train(string dir) =>
    [
        "train", "--task", "lm", "--model", SharedData.Require("models/stories260K"), "--data", SharedData.Require("corpus/tinystories-sample.txt"),
        "--num-train", "8", "--num-dev", "2", "--num-eval", "2", "--batch-size", "4", "--epochs", "2", "--checkpoint-every", "1", "--out", dir,
    ];

    [Fact]
    public void A_generator_state_libtorch_would_refuse_is_named_and_the_process_exits_2()
    {
        var dir = PathIn("run");
        var (exit, _, error) = CliProcess.Run(Train(dir));
        Assert.True(exit == 0, error);
        // libtorch threw "Invalid mt19937 state" from set_state, past TorchSharp: abort, exit 134, a C++ trace.
        var rng = Path.Combine(dir, "checkpoint", "rng.bin");
        var bytes = File.ReadAllBytes(rng);
        new Random(25).NextBytes(bytes.AsSpan(16));
        File.WriteAllBytes(rng, bytes);

        (exit, _, error) = CliProcess.Run([.. Train(dir), "--resume", dir]);

        Assert.Equal(2, exit);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: {rng}: not a CPU generator state", line);
    }
}
