using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Training;

public class CheckpointTests
{
    static readonly TrainerOptions Options = new()
    {
        Method = TrainingMethod.Cola, LearningRate = 5e-3, Epochs = 3, Seed = 5, GradientAccumulation = 2,
    };

    /// <summary>Checkpoints into <paramref name="dir"/> every 2 steps (and at link ends).</summary>
    static RunPlumbing Every2(string dir) => new() { CheckpointDir = dir, CheckpointEvery = 2 };
    static readonly ChainConfig Chain = new() { Length = 3, Ranks = [8, 4] };
    static readonly LoraConfig Lora = new() { Dropout = 0.1, Bias = LoraBias.LoraOnly };

    sealed class Interrupted : Exception;

    static Dictionary<string, Tensor> Weights(CausalLM model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    [Theory]
    [InlineData(3)]  // mid first link, between checkpoints
    [InlineData(6)]  // right at the first knot
    [InlineData(11)] // in the last link
    public void A_run_interrupted_and_resumed_ends_exactly_like_an_uninterrupted_one(int stopAfter) =>
        AssertResumesExactly(Options, stopAfter);

    // optimizer.bin is checked field by field against the run's optimizer (OptimizerStateFile): each kind's layout must pass.
    [Theory]
    [InlineData(OptimizerKind.Sgd, 0.9)] // a momentum buffer per parameter once a step is taken
    [InlineData(OptimizerKind.Sgd, 0.0)]
    [InlineData(OptimizerKind.AdaGrad, 0.0)]
    public void Each_optimizer_resumes_exactly(OptimizerKind optimizer, double momentum) =>
        AssertResumesExactly(Options with { Optimizer = optimizer, Momentum = momentum, WeightDecay = 0.01 }, stopAfter: 8);

    static void AssertResumesExactly(TrainerOptions options, int stopAfter)
    {
        var dir = Directory.CreateTempSubdirectory("ckpt").FullName;
        try
        {
            using var reference = TinyModels.Opt();
            var full = new ChainTrainer(reference, options, Lora, Chain, Every2(Path.Combine(dir, "a")))
                .Train(new RandomLmData(8));

            using (var first = TinyModels.Opt())
            {
                var trainer = new ChainTrainer(first, options, Lora, Chain, Every2(Path.Combine(dir, "b")))
                {
                    OnStep = r => { if (r.Step == stopAfter) throw new Interrupted(); },
                };
                Assert.Throws<Interrupted>(() => trainer.Train(new RandomLmData(8)));
            }
            manual_seed(999); // the resumed process starts with unrelated RNG state
            using var resumedModel = TinyModels.Opt();
            var resumed = new ChainTrainer(resumedModel, options, Lora, Chain, Every2(Path.Combine(dir, "b")))
                .Train(new RandomLmData(8), resumeFrom: Path.Combine(dir, "b"));

            Assert.True(full.StepLosses.SequenceEqual(resumed.StepLosses), string.Join(",", full.StepLosses.Select(x => x.ToString("F4"))) + " vs " + string.Join(",", resumed.StepLosses.Select(x => x.ToString("F4"))));
            for (var i = 0; i < full.StepLosses.Count; i++) Assert.Equal(full.StepLosses[i], resumed.StepLosses[i], 1e-6);
            var a = Weights(reference);
            foreach (var (name, w) in Weights(resumedModel))
                Assert.True(Fixtures.MaxAbsDiff(w, a[name]) <= 1e-6, $"{name} differs by {Fixtures.MaxAbsDiff(w, a[name]):E2}");
            Assert.Equal(full.TotalFlops, resumed.TotalFlops, 1e-3);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_missing_checkpoint_is_named()
    {
        using var model = TinyModels.Opt();
        var trainer = new ChainTrainer(model, Options, Lora, Chain);
        var e = Assert.Throws<FileNotFoundException>(() => trainer.Train(new RandomLmData(4), resumeFrom: "/nonexistent/ckpt"));
        Assert.Contains("/nonexistent/ckpt", e.Message);
    }

    public static TheoryData<string, string> Damages => new()
    {
        { "rng.bin", "truncate" },
        { "optimizer.bin", "truncate" },
        { "state.json", "step-past-knot" },
        { "state.json", "batch-9999" },
        { "state.json", "step-negative" },
        { "state.json", "rank-huge" },
        { "weights.safetensors", "truncate" },
        { "rng.bin", "mt19937-position" },
        { "optimizer.bin", "negative-rank" },
        { "optimizer.bin", "beta1" },
        { "optimizer.bin", "nan-moment" },
    };

    // optimizer.bin of AdamW (OptimizerStateFile): "AdamW" with its length, two one-byte counts, six
    // option doubles and two flags; then the first state's step, and its first moment's dtype and rank.
    const int FirstBeta1 = 1 + 5 + 2 + 16, FirstDtype = 1 + 5 + 2 + 6 * 8 + 2 + 8;

    [Theory]
    [MemberData(nameof(Damages))]
    public void A_damaged_checkpoint_is_refused_naming_the_file(string file, string damage)
    {
        var dir = Directory.CreateTempSubdirectory("ckpt-damage").FullName;
        try
        {
            using (var model = TinyModels.Opt())
            {
                var trainer = new ChainTrainer(model, Options, Lora, Chain, Every2(dir))
                {
                    OnStep = r => { if (r.Step == 4) throw new Interrupted(); },
                };
                Assert.Throws<Interrupted>(() => trainer.Train(new RandomLmData(8)));
            }
            var path = Path.Combine(dir, file);
            var state = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "state.json")))!;
            switch (damage)
            {
                case "truncate":
                    var bytes = File.ReadAllBytes(path);
                    File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                    break;
                case "step-past-knot":
                    // Step 7 lies past the first knot (step 6), but the weights hold no tied link.
                    state["Step"] = 7;
                    state["StepLosses"]!.AsArray().Add(1.0);
                    state["StepLosses"]!.AsArray().Add(1.0);
                    state["StepLosses"]!.AsArray().Add(1.0);
                    File.WriteAllText(path, state.ToJsonString());
                    break;
                case "batch-9999":
                    state["BatchInEpoch"] = 9999;
                    File.WriteAllText(path, state.ToJsonString());
                    break;
                case "step-negative":
                    state["Step"] = -3;
                    File.WriteAllText(path, state.ToJsonString());
                    break;
                case "rank-huge":
                    // The rank sized the factors ExtendChain allocated before the stored ones were compared: 256 GB here.
                    state["TiedScalings"]![0]!["Rank"] = 2_000_000_000;
                    File.WriteAllText(path, state.ToJsonString());
                    break;
                case "mt19937-position":
                    // libtorch's set_state threw "Invalid mt19937 state" past TorchSharp, aborting the process.
                    var rng = File.ReadAllBytes(path);
                    new Random(25).NextBytes(rng.AsSpan(16));
                    File.WriteAllBytes(path, rng);
                    break;
                case "negative-rank":
                    // TorchSharp allocated the shape's array from it: OverflowException (fuzz seed 85jKaxUrQy61).
                    var optimizer = File.ReadAllBytes(path);
                    Assert.Equal([(byte)ScalarType.Float32, 1], optimizer[FirstDtype..(FirstDtype + 2)]);
                    File.WriteAllBytes(path, [.. optimizer[..(FirstDtype + 1)], .. Enumerable.Repeat((byte)0xFF, 9), 0x01, .. optimizer[(FirstDtype + 2)..]]);
                    break;
                case "beta1":
                    // TorchSharp took the file's option values over the run's, silently.
                    var options = File.ReadAllBytes(path);
                    Assert.Equal(0.9, BitConverter.ToDouble(options, FirstBeta1));
                    BitConverter.GetBytes(0.5).CopyTo(options, FirstBeta1);
                    File.WriteAllBytes(path, options);
                    break;
                case "nan-moment":
                    var moments = File.ReadAllBytes(path);
                    BitConverter.GetBytes(float.NaN).CopyTo(moments, FirstDtype + 3);
                    File.WriteAllBytes(path, moments);
                    break;
            }
            using var resumed = TinyModels.Opt();
            var again = new ChainTrainer(resumed, Options, Lora, Chain, Every2(Path.Combine(dir, "next")));
            var e = Assert.Throws<InvalidDataException>(() => again.Train(new RandomLmData(8), resumeFrom: dir));
            Assert.Contains(file == "state.json" && damage == "batch-9999" ? "micro-batch 9999" : file, e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
