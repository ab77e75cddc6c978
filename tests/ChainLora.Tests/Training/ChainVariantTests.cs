using ChainLora.Chain;
using ChainLora.Experiments;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Training;

/// <summary>Automatic knots and the chain variants beyond Algorithm 1.</summary>
public class ChainVariantTests
{
    static ChainSchedule Auto(int total, int maxLinks) =>
        ChainSchedule.Create(new ChainConfig { Length = maxLinks, Auto = new AutoKnots { Window = 5, Threshold = 0.01 } }, new LoraConfig(), total, 1);

    [Fact]
    public void A_knot_is_placed_where_the_windowed_loss_stops_improving()
    {
        var schedule = Auto(100, 3);
        var link = schedule.Links[0];
        // Falling fast for 20 steps, then flat.
        var losses = Enumerable.Range(0, 100).Select(i => i < 20 ? 5.0 - 0.1 * i : 3.0).ToList();
        Assert.Null(new AutoKnots { Window = 5 }.Decide(losses, link, 9, schedule));   // two windows need 10 steps
        Assert.Null(new AutoKnots { Window = 5 }.Decide(losses, link, 20, schedule));  // still falling
        var reason = new AutoKnots { Window = 5 }.Decide(losses, link, 30, schedule);
        Assert.NotNull(reason);
        Assert.Contains("steps 26-30", reason);
        Assert.Contains("threshold 1.0", reason);

        var cut = schedule.CutAt(30, reason!);
        Assert.Equal([(0, 30), (30, 100)], cut.Links.Select(l => (l.StartStep, l.EndStep)));
        Assert.Equal(reason, cut.Links[1].Reason);
        // Both windows must lie inside the new link, and the chain has room for one more.
        Assert.Null(new AutoKnots { Window = 5 }.Decide(losses, cut.Links[1], 35, cut));
        var twice = cut.CutAt(50, "second");
        Assert.Null(new AutoKnots { Window = 5 }.Decide(losses, twice.Links[2], 70, twice)); // 3 links: full
        Assert.Throws<InvalidOperationException>(() => twice.CutAt(80, "fourth"));
        // No link shorter than a window at the end of the budget.
        Assert.Null(new AutoKnots { Window = 5 }.Decide(losses, cut.Links[1], 96, cut));
    }

    static readonly TrainerOptions Options = new()
    {
        Method = TrainingMethod.Cola, LearningRate = 5e-3, Epochs = 6, Seed = 5, CheckpointEvery = 3,
    };
    static readonly ChainConfig AutoChain = new() { Length = 3, Auto = new AutoKnots { Window = 2, Threshold = 0.5 } };

    sealed class Interrupted : Exception;

    [Fact]
    public void Automatic_knots_are_recorded_and_resume_exactly()
    {
        var dir = Directory.CreateTempSubdirectory("autoknots").FullName;
        try
        {
            using var reference = TinyModels.Opt();
            var whole = new ChainTrainer(reference, Options with { CheckpointDir = Path.Combine(dir, "a") }, new LoraConfig(), AutoChain)
                .Train(new RandomLmData(4));
            Assert.Equal(3, whole.Links.Count);
            Assert.Null(whole.Links[0].Reason);
            Assert.All(whole.Links.Skip(1), l => Assert.StartsWith("auto: ", l.Reason));
            Assert.Equal(24, whole.Links.Sum(l => l.Losses.Count));
            var knot = whole.Links[1].StartStep;

            using (var first = TinyModels.Opt())
            {
                var trainer = new ChainTrainer(first, Options with { CheckpointDir = Path.Combine(dir, "b") }, new LoraConfig(), AutoChain)
                {
                    OnStep = r => { if (r.Step == knot + 1) throw new Interrupted(); },
                };
                Assert.Throws<Interrupted>(() => trainer.Train(new RandomLmData(4)));
            }
            manual_seed(999);
            using var resumedModel = TinyModels.Opt();
            var resumed = new ChainTrainer(resumedModel, Options with { CheckpointDir = Path.Combine(dir, "b") }, new LoraConfig(), AutoChain)
                .Train(new RandomLmData(4), resumeFrom: Path.Combine(dir, "b"));
            Assert.Equal(whole.StepLosses, resumed.StepLosses);
            Assert.Equal(whole.Links.Select(l => (l.StartStep, l.Reason)), resumed.Links.Select(l => (l.StartStep, l.Reason)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The largest |off-diagonal| of A A^T relative to its mean diagonal, over the adapted layers after training.</summary>
    static double RowOverlap(ColaVariant variant)
    {
        using var model = TinyModels.Llama();
        var trainer = new ChainTrainer(model, Options with { Epochs = 2, CheckpointEvery = 0, Variant = variant }, new LoraConfig(),
            new ChainConfig { Length = 2 });
        Assert.Equal(2, trainer.Train(new RandomLmData(4)).Links.Count);
        return trainer.Adapters!.Layers.Values.Max(layer =>
        {
            Assert.False(layer.Base.Weight.requires_grad);
            Assert.Null(layer.Base.Weight.grad);
            using var gram = layer.A.detach().matmul(layer.A.detach().t());
            var diagonal = gram.diag();
            return (gram - diag(diagonal)).abs().max().item<float>() / diagonal.mean().item<float>();
        });
    }

    [Fact]
    public void Gradient_init_starts_each_new_link_along_the_weight_gradients_top_directions()
    {
        // At the knot A's rows are the gradient's top right singular vectors: orthogonal, of equal
        // norm. The last link trains for 4 AdamW steps of lr 5e-3, which keeps A A^T close to a
        // multiple of the identity; a random (Kaiming) A is visibly less orthogonal.
        var gradientInit = RowOverlap(ColaVariant.GradientInit);
        var paper = RowOverlap(ColaVariant.Paper);
        Assert.True(gradientInit < 0.05, $"gradient init: rows overlap {gradientInit:F3}");
        Assert.True(paper > 2 * gradientInit, $"random init overlaps {paper:F3}, gradient init {gradientInit:F3}");

        var e = Assert.Throws<ArgumentException>(() => new ChainTrainer(TinyModels.Llama(), Options with { Variant = ColaVariant.GradientInit },
            new LoraConfig(), AutoChain));
        Assert.Contains("gradient init", e.Message);
        e = Assert.Throws<ArgumentException>(() => new ChainTrainer(TinyModels.Llama(), Options with { Method = TrainingMethod.Lora, Variant = ColaVariant.Rewarm },
            new LoraConfig(), new ChainConfig()));
        Assert.Contains("needs method cola", e.Message);
    }

    [Fact]
    public void Best_is_read_as_exactly_one_variant_and_never_written()
    {
        var best = Assert.Single(EnumNames.Aliases<ColaVariant>(), a => a.Alias == "best").Value;
        Assert.Equal(best, EnumNames.Parse<ColaVariant>(" BEST ", "--cola-variant"));
        Assert.DoesNotContain("best", EnumNames.All<ColaVariant>());
        Assert.Equal(EnumNames.All<ColaVariant>().Append("best"), EnumNames.Accepted<ColaVariant>());
        Assert.EndsWith($"or best (= {EnumNames.Name(best)})", EnumNames.Choices<ColaVariant>());
        // In a config it reads as the variant, and the cell's spec (and so its id) records the variant's own name.
        var method = ExperimentConfig.Deserialize<MethodSpec>("""{ "name": "b", "kind": "cola", "variant": "best" }""", "test");
        Assert.Equal(best, method.Variant);
        var named = ExperimentConfig.Deserialize<MethodSpec>($$"""{ "name": "b", "kind": "cola", "variant": "{{EnumNames.Name(best)}}" }""", "test");
        Assert.Equal(ExperimentConfig.Serialize(named), ExperimentConfig.Serialize(method));
        var e = Assert.Throws<ArgumentException>(() => EnumNames.Parse<ColaVariant>("bestest", "--cola-variant"));
        Assert.Contains("best (= ", e.Message);
    }
}
