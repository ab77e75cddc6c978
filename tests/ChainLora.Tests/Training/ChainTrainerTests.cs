using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Training;

public class ChainTrainerTests
{
    static TrainingResult Train(TrainerOptions options, ChainConfig chain, int batches = 6, LoraConfig? lora = null,
        Action<StepReport>? onStep = null, Func<ChainTrainer, Action<StepReport>>? hook = null)
    {
        using var model = TinyModels.Llama();
        var trainer = new ChainTrainer(model, options, lora ?? new LoraConfig(), chain) { OnStep = onStep };
        return trainer.Train(new RandomLmData(batches));
    }

    static readonly TrainerOptions Base = new() { LearningRate = 5e-3, Epochs = 3, Seed = 11 };

    [Fact]
    public void Same_seed_gives_identical_losses_and_another_seed_does_not()
    {
        var chain = new ChainConfig { Length = 3 };
        var a = Train(Base with { Method = TrainingMethod.Cola }, chain);
        var b = Train(Base with { Method = TrainingMethod.Cola }, chain);
        var c = Train(Base with { Method = TrainingMethod.Cola, Seed = 12 }, chain);
        Assert.Equal(a.StepLosses, b.StepLosses);
        Assert.NotEqual(a.StepLosses, c.StepLosses);
    }

    [Fact]
    public void Chain_length_one_is_exactly_lora_and_matches_a_hand_written_loop()
    {
        var lora = Train(Base with { Method = TrainingMethod.Lora }, new ChainConfig());
        var cola1 = Train(Base with { Method = TrainingMethod.Cola }, new ChainConfig { Length = 1 });
        Assert.Equal(lora.StepLosses, cola1.StepLosses);

        // Independent loop: inject, AdamW on A and B, linear decay, same data and seed.
        using var model = TinyModels.Llama();
        manual_seed(Base.Seed);
        var adapters = LoraAdapters.Inject(model, new LoraConfig());
        var parameters = adapters.TrainableParameters();
        using var adam = optim.AdamW(parameters, Base.LearningRate);
        var data = new RandomLmData(6);
        var total = 6 * Base.Epochs;
        var losses = new List<double>();
        for (var epoch = 0; epoch < Base.Epochs; epoch++)
            foreach (var batch in data.Epoch(epoch))
            {
                foreach (var g in adam.ParamGroups) g.LearningRate = Base.LearningRate * (total - losses.Count) / total;
                var loss = batch.Loss(model);
                loss.backward();
                adam.step();
                adam.zero_grad();
                losses.Add(loss.item<float>());
            }
        Assert.Equal(losses.Count, lora.StepLosses.Count);
        for (var i = 0; i < losses.Count; i++) Assert.Equal(losses[i], lora.StepLosses[i], 1e-6);
        Assert.True(losses[^1] < losses[0], "training should reduce the loss");
    }

    [Fact]
    public void Each_link_starts_from_a_fresh_optimizer_state()
    {
        // With fresh AdamW state, the first update of a link moves every entry of B (zero at the
        // link's start) by exactly lr * g / (|g| + eps) ~ ±lr. Stale moment estimates would not.
        using var model = TinyModels.Llama();
        var knotStep = 6;
        ChainTrainer? trainer = null;
        var checkedFirstStep = false;
        trainer = new ChainTrainer(model, Base with { Method = TrainingMethod.Cola, Epochs = 2 }, new LoraConfig(), new ChainConfig { Length = 2 })
        {
            OnStep = r =>
            {
                if (r.Step != knotStep + 1) return;
                foreach (var layer in trainer!.Adapters!.Layers.Values)
                {
                    var moved = layer.B.detach().abs();
                    var nonzero = moved.gt(1e-9);
                    Assert.True(nonzero.sum().item<long>() > moved.numel() / 2);
                    // eps = 1e-8 shortens the step only where |g| is tiny; it never lengthens it.
                    var relative = (moved[nonzero] / r.LearningRate - 1).abs();
                    Assert.True(relative.lt(1e-3).to(ScalarType.Float32).mean().item<float>() > 0.9,
                        $"first step after the knot: median |step/lr - 1| = {relative.median().item<float>()}");
                    Assert.True(moved.max().item<float>() <= r.LearningRate * (1 + 1e-5));
                }
                checkedFirstStep = true;
            },
        };
        var result = trainer.Train(new RandomLmData(knotStep));
        Assert.True(checkedFirstStep);
        Assert.Equal(2, result.Links.Count);
        Assert.All(trainer.Adapters!.Layers.Values, l => Assert.Single(l.TiedLinks));
    }

    [Fact]
    public void Cola_with_rank_step_down_trains_links_at_their_ranks_and_logs_knots()
    {
        var log = Path.Combine(Path.GetTempPath(), $"train-{Guid.NewGuid():N}.jsonl");
        try
        {
            using var model = TinyModels.Llama();
            var trainer = new ChainTrainer(model, Base with { Method = TrainingMethod.Cola }, new LoraConfig(),
                new ChainConfig { Length = 3, Ranks = [8, 4] }, new RunPlumbing { LogPath = log });
            var result = trainer.Train(new RandomLmData(4));
            Assert.Equal([8, 4, 4], result.Links.Select(l => l.Rank));
            Assert.Equal([4, 4, 4], result.Links.Select(l => l.Losses.Count));
            Assert.All(trainer.Adapters!.Layers.Values, l =>
            {
                Assert.Equal([8, 4], l.TiedLinks.Select(t => t.Rank));
                Assert.Equal(4, l.Rank);
            });
            var lines = File.ReadAllLines(log);
            Assert.Equal(12 + 2, lines.Length);
            Assert.Equal(2, lines.Count(l => l.Contains("\"event\":\"knot\"")));
            Assert.DoesNotContain(lines, l => l.Contains("\"delta\":{", StringComparison.Ordinal));   // spectra only when asked for
            Assert.Contains("\"step\":1,\"link\":1,", lines[0]);
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public void Accumulating_two_copies_of_a_batch_equals_one_step_on_it()
    {
        var once = Train(Base with { Epochs = 1 }, new ChainConfig(), batches: 3);
        using var model = TinyModels.Llama();
        var trainer = new ChainTrainer(model, Base with { Epochs = 1, GradientAccumulation = 2 }, new LoraConfig(), new ChainConfig());
        var twice = trainer.Train(new RandomLmData(3, repeatEach: 2));
        Assert.Equal(3, twice.StepLosses.Count);
        for (var i = 0; i < 3; i++) Assert.Equal(once.StepLosses[i], twice.StepLosses[i], 1e-5);
    }

    [Fact]
    public void Accumulation_that_does_not_divide_an_epoch_drops_the_leftover_and_still_trains_every_link()
    {
        // 5 micro-batches at 2 per step: 2 steps per epoch, the fifth batch skipped (drop_last).
        // The schedule counts those steps, so the third link trains as long as the others.
        using var model = TinyModels.Llama();
        var trainer = new ChainTrainer(model, Base with { Method = TrainingMethod.Cola, Epochs = 3, GradientAccumulation = 2 },
            new LoraConfig(), new ChainConfig { Length = 3 });
        var result = trainer.Train(new RandomLmData(5));
        Assert.Equal(6, result.StepLosses.Count);
        Assert.Equal([2, 2, 2], result.Links.Select(l => l.Losses.Count));
        Assert.Equal(6 * 2 * 2 * 12, result.Tokens); // 6 steps x 2 micro-batches x (2 x 12) tokens
        Assert.All(trainer.Adapters!.Layers.Values, l => Assert.Equal(2, l.TiedLinks.Count));

        using var other = TinyModels.Llama();
        var tooFew = new ChainTrainer(other, Base with { GradientAccumulation = 4 }, new LoraConfig(), new ChainConfig());
        var e = Assert.Throws<ArgumentException>(() => tooFew.Train(new RandomLmData(3)));
        Assert.Contains("gradient accumulation 4", e.Message);
    }

    [Fact]
    public void A_diverging_run_stops_before_the_bad_step_with_its_weights_and_checkpoint_intact()
    {
        var dir = Directory.CreateTempSubdirectory("diverge").FullName;
        try
        {
            using var model = TinyModels.Llama();
            Dictionary<string, Tensor>? lastGood = null;
            var trainer = new ChainTrainer(model, Base with { LearningRate = 1e10, Optimizer = OptimizerKind.Sgd },
                new LoraConfig(), new ChainConfig(), new RunPlumbing { CheckpointDir = dir, CheckpointEvery = 1 })
            {
                OnStep = _ => lastGood = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone()),
            };
            var e = Assert.Throws<TrainingDivergedException>(() => trainer.Train(new RandomLmData(6)));
            Assert.Matches(@"^loss diverged at step \d+ \(link 1\): the (loss|gradient norm) is", e.Message);
            Assert.True(e.Step >= 2, $"diverged at step {e.Step}: the first step cannot see a bad gradient yet");
            Assert.Equal(e.Step - 1, e.Partial.StepLosses.Count);
            Assert.All(e.Partial.StepLosses, l => Assert.True(double.IsFinite(l)));
            foreach (var (name, p) in model.named_parameters())
                Assert.True(p.detach().equal(lastGood![name]).all().item<bool>(), $"{name} moved after the last good step");
            var state = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "state.json")))!;
            Assert.Equal(e.Step - 1, state["Step"]!.GetValue<int>());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Infinite_settings_are_refused_by_name()
    {
        Assert.Contains("learning rate", Assert.Throws<ArgumentException>(() => (Base with { LearningRate = double.PositiveInfinity }).Validate()).Message);
        Assert.Contains("weight decay", Assert.Throws<ArgumentException>(() => (Base with { WeightDecay = double.PositiveInfinity }).Validate()).Message);
        Assert.Contains("max grad norm", Assert.Throws<ArgumentException>(() => (Base with { MaxGradNorm = double.NaN }).Validate()).Message);
    }

    [Fact]
    public void Full_fine_tuning_trains_every_parameter_and_refuses_bf16()
    {
        var full = Train(Base with { Method = TrainingMethod.Full, Epochs = 1 }, new ChainConfig());
        Assert.Equal(TinyModels.Llama().parameters().Sum(p => p.numel()), full.TrainableParameters);
        using var bf16 = TinyModels.Llama(dtype: ScalarType.BFloat16);
        var trainer = new ChainTrainer(bf16, Base with { Method = TrainingMethod.Full }, new LoraConfig(), new ChainConfig());
        Assert.Contains("fp32", Assert.Throws<ArgumentException>(() => trainer.Setup(new RandomLmData(2))).Message);
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adagrad")]
    [InlineData("adamw")]
    public void Every_optimizer_reduces_the_loss_with_bf16_base_weights(string optimizer)
    {
        using var model = TinyModels.Llama(dtype: ScalarType.BFloat16);
        var options = Base with { Method = TrainingMethod.Cola, Optimizer = TrainerOptions.ParseOptimizer(optimizer), LearningRate = optimizer == "sgd" ? 0.5 : 1e-2, Epochs = 4, Momentum = optimizer == "sgd" ? 0.9 : 0 };
        var trainer = new ChainTrainer(model, options, new LoraConfig(), new ChainConfig { Length = 2 });
        var result = trainer.Train(new RandomLmData(3));
        Assert.True(result.StepLosses[^1] < result.StepLosses[0] - 0.05, $"{optimizer}: {result.StepLosses[0]} -> {result.StepLosses[^1]}");
        Assert.All(trainer.Adapters!.TrainableParameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
    }

    [Fact]
    public void Lora_method_with_a_longer_chain_is_refused()
    {
        using var model = TinyModels.Llama();
        var e = Assert.Throws<ArgumentException>(() =>
            new ChainTrainer(model, Base with { Method = TrainingMethod.Lora }, new LoraConfig(), new ChainConfig { Length = 2 }));
        Assert.Contains("cola", e.Message);
    }
}
