using ChainLora.Chain;
using ChainLora.Experiments;
using ChainLora.IO;
using ChainLora.Lora;
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
        Method = TrainingMethod.Cola, LearningRate = 5e-3, Epochs = 6, Seed = 5,
    };

    /// <summary>Checkpoints into <paramref name="dir"/> every 3 steps (and at link ends).</summary>
    static RunPlumbing Every3(string dir) => new() { CheckpointDir = dir, CheckpointEvery = 3 };
    static readonly ChainConfig AutoChain = new() { Length = 3, Auto = new AutoKnots { Window = 2, Threshold = 0.5 } };

    sealed class Interrupted : Exception;

    [Fact]
    public void Automatic_knots_are_recorded_and_resume_exactly()
    {
        var dir = Directory.CreateTempSubdirectory("autoknots").FullName;
        try
        {
            using var reference = TinyModels.Opt();
            var whole = new ChainTrainer(reference, Options, new LoraConfig(), AutoChain, Every3(Path.Combine(dir, "a")))
                .Train(new RandomLmData(4));
            Assert.Equal(3, whole.Links.Count);
            Assert.Null(whole.Links[0].Reason);
            Assert.All(whole.Links.Skip(1), l => Assert.StartsWith("auto: ", l.Reason));
            Assert.Equal(24, whole.Links.Sum(l => l.Losses.Count));
            var knot = whole.Links[1].StartStep;

            using (var first = TinyModels.Opt())
            {
                var trainer = new ChainTrainer(first, Options, new LoraConfig(), AutoChain, Every3(Path.Combine(dir, "b")))
                {
                    OnStep = r => { if (r.Step == knot + 1) throw new Interrupted(); },
                };
                Assert.Throws<Interrupted>(() => trainer.Train(new RandomLmData(4)));
            }
            manual_seed(999);
            using var resumedModel = TinyModels.Opt();
            var resumed = new ChainTrainer(resumedModel, Options, new LoraConfig(), AutoChain, Every3(Path.Combine(dir, "b")))
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
        var trainer = new ChainTrainer(model, Options with { Epochs = 2, Variant = variant }, new LoraConfig(),
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

    [Fact]
    public void Best_is_the_variant_the_converged_lm_study_chose_on_dev()
    {
        // The rank-8 chains of experiments/lm2-converged.json, 5 seeds each at the rate each chose on dev; the
        // variant with the lowest mean dev NLL is the one `best` must name (test never chooses).
        var cells = ResultTable.Summarize(ResultTable.Load(RepoFiles.Require("runs/lm2")));
        var chains = cells.Where(c => c.Example.Kind == MethodKind.Cola && c.Example.Options.Sizes.Train == 1600).ToList();
        Assert.Equal(6, chains.Select(c => c.Example.Options.Trainer.Variant).Distinct().Count());
        Assert.All(chains, c => Assert.Equal(5, c.Seeds));
        var chosen = chains.MaxBy(c => c.Runs.Average(r => r.Dev!.Value))!;
        Assert.Equal(chosen.Example.Options.Trainer.Variant, EnumNames.Parse<ColaVariant>("best", "--cola-variant"));
    }

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();

    /// <summary>Adapter tensors of the first adapted layer after each step: A and B, cloned.</summary>
    static (ChainTrainer Trainer, TrainingResult Result, List<(Tensor A, Tensor B)> PerStep) TrainRecording(ColaVariant variant, int links = 2)
    {
        var model = TinyModels.Llama();
        var perStep = new List<(Tensor A, Tensor B)>();
        ChainTrainer? trainer = null;
        trainer = new ChainTrainer(model, Options with { Epochs = 2, Variant = variant }, new LoraConfig(), new ChainConfig { Length = links })
        {
            OnStep = _ =>
            {
                var layer = trainer!.Adapters!.Layers.Values.First();
                perStep.Add((layer.A.detach().clone().DetachFromDisposeScope(), layer.B.detach().clone().DetachFromDisposeScope()));
            },
        };
        return (trainer, trainer.Train(new RandomLmData(4)), perStep);
    }

    [Fact]
    public void Rac_draws_a_fresh_random_a_for_each_link_freezes_it_and_trains_only_b()
    {
        // 8 steps, links of 4: A after steps 1..4 is the first link's draw, after 5..8 the second's.
        var (trainer, result, steps) = TrainRecording(ColaVariant.Rac);
        Assert.Equal(2, result.Links.Count);
        for (var i = 1; i < 4; i++) Assert.True(Same(steps[i].A, steps[0].A), $"A moved at step {i + 1}");
        for (var i = 5; i < 8; i++) Assert.True(Same(steps[i].A, steps[4].A), $"A moved at step {i + 1}");
        Assert.False(Same(steps[4].A, steps[3].A), "the second link reused the first link's A");
        Assert.False(Same(steps[3].B, steps[0].B), "B did not train");
        Assert.All(trainer.Adapters!.Layers.Values, l => Assert.False(l.A.requires_grad));
        // The optimizer holds only the Bs, one per adapted layer.
        var optimized = trainer.CurrentOptimizer!.parameters().ToList();
        Assert.Equal(trainer.Adapters.Layers.Count, optimized.Count);
        Assert.All(optimized, p => Assert.Contains(trainer.Adapters.Layers.Values, l => ReferenceEquals(l.B, p)));

        // In the paper's chain A trains as well.
        var (_, _, paper) = TrainRecording(ColaVariant.Paper);
        Assert.False(Same(paper[3].A, paper[0].A));
    }

    static List<Tensor> Moments(TorchSharp.torch.optim.Optimizer optimizer) =>
        [.. ((TorchSharp.Modules.OptimizerHelper)optimizer).state_dict().State.OfType<TorchSharp.Modules.AdamW.State>()
            .SelectMany(s => new[] { s.exp_avg, s.exp_avg_sq }).Select(m => m.detach().clone())];

    [Fact]
    public void Relora_keeps_the_largest_tenth_of_the_optimizer_state_at_a_knot_instead_of_a_fresh_optimizer()
    {
        foreach (var variant in new[] { ColaVariant.Relora, ColaVariant.Paper })
        {
            using var model = TinyModels.Llama();
            using var stop = new CancellationTokenSource();
            List<Tensor> before = [];
            ChainTrainer? trainer = null;
            trainer = new ChainTrainer(model, Options with { Epochs = 2, Variant = variant }, new LoraConfig(),
                new ChainConfig { Length = 2 }, new RunPlumbing { Stop = stop.Token })
            {
                // After the first link's last step: the state the knot starts from; stopping there ties the knot and keeps the optimizer.
                OnStep = r =>
                {
                    if (r.Step != 4) return;
                    before = Moments(trainer!.CurrentOptimizer!);
                    stop.Cancel();
                },
            };
            Assert.Throws<TrainingStoppedException>(() => trainer.Train(new RandomLmData(4)));
            var after = Moments(trainer.CurrentOptimizer!);
            if (variant == ColaVariant.Paper)
            {
                Assert.All(after, m => Assert.Equal(0, m.count_nonzero().item<long>()));   // Algorithm 1: a fresh optimizer, all state zero
                continue;
            }
            Assert.Equal(before.Count, after.Count);
            Assert.Equal(2 * trainer.Adapters!.Layers.Count * 2, after.Count);   // A and B per layer, two moments each
            foreach (var (pre, post) in before.Zip(after))
            {
                // Independently: the k-th largest magnitude by a full sort, k = ceil(10% of the entries).
                var n = pre.numel();
                var k = (long)Math.Ceiling(0.1 * n);
                var threshold = pre.abs().flatten().sort(descending: true).Values[k - 1].item<float>();
                var expected = pre * pre.abs().ge(threshold);
                Assert.True(Same(post, expected), "the state is not the top 10% by magnitude of the state before the knot");
                Assert.Equal(k, post.count_nonzero().item<long>());
            }
        }
    }

    [Fact]
    public void Relora_restarts_the_rate_from_near_zero_after_a_knot_and_climbs_back_to_the_budget_wide_decay()
    {
        var chain = ChainSchedule.Create(new ChainConfig { Length = 2 }, new LoraConfig(), stepsPerEpoch: 100, epochs: 2);
        var jagged = new LrSchedule(1.0, 0, false, chain, ColaVariants.ReloraRestartWarmup);   // ramp of ceil(2% of 100) = 2 steps
        var smooth = new LrSchedule(1.0, 0, false, chain);
        Assert.Equal([0.75, 0.505, 0.25, 0.495, 0.3], new[] { 50, 99, 100, 101, 140 }.Select(jagged.At));
        Assert.Equal([0.75, 0.505, 0.5, 0.495, 0.3], new[] { 50, 99, 100, 101, 140 }.Select(smooth.At));

        // The trainer follows it: 200 steps, links of 100.
        using var model = TinyModels.Llama();
        var rates = new List<double>();
        new ChainTrainer(model, Options with { Epochs = 2, Variant = ColaVariant.Relora, LearningRate = 1e-3 }, new LoraConfig(),
            new ChainConfig { Length = 2 })
        { OnStep = r => rates.Add(r.LearningRate) }.Train(new RandomLmData(100));
        Assert.Equal(1e-3 * 0.5 * 0.5, rates[100], 12);   // step 101: half the ramp of the budget-wide 0.5
        Assert.Equal(1e-3 * 0.495, rates[101], 12);
    }

    [Fact]
    public void Every_variant_counts_the_flops_of_what_it_computes()
    {
        // Tiny Llama, rank 8, q (32 -> 32) and v (32 -> 16) in 2 layers; 8 steps of 2 x 12 tokens, links of 4.
        static (double Flops, long Tokens) Run(ColaVariant variant, int links)
        {
            using var model = TinyModels.Llama();
            var method = links == 1 ? TrainingMethod.Lora : TrainingMethod.Cola;
            var r = new ChainTrainer(model, Options with { Method = method, Epochs = 2, Variant = variant }, new LoraConfig(),
                new ChainConfig { Length = links }).Train(new RandomLmData(4));
            return (r.TotalFlops, r.Tokens);
        }
        var (lora, tokens) = Run(ColaVariant.Paper, 1);
        var (paper, _) = Run(ColaVariant.Paper, 2);
        // The knot's merge: 2 r in out per layer.
        double merge = 2 * (2 * 8 * 32 * 32 + 2 * 8 * 32 * 16);
        Assert.Equal(lora + merge, paper, 6);
        // RAC computes no gradient of A: 2 r in per token per layer less.
        Assert.Equal(paper - tokens * 2 * (2 * 8 * 32 + 2 * 8 * 32), Run(ColaVariant.Rac, 2).Flops, 6);
        // Gradient init: the frozen weights' gradients on the first link's last step (a quarter of it: 2 x 12 tokens),
        // 2 in out per token per layer, and a thin SVD of each gradient, 14 m n^2 + 8 n^3 (m >= n).
        double weightGradients = tokens / 8.0 * 2 * (2 * 32 * 32 + 2 * 32 * 16);
        double svds = 2 * ((14.0 * 32 * 32 * 32 + 8.0 * 32 * 32 * 32) + (14.0 * 32 * 16 * 16 + 8.0 * 16 * 16 * 16));
        Assert.Equal(paper + weightGradients + svds, Run(ColaVariant.GradientInit, 2).Flops, 6);
        // ReLoRA computes what the paper's chain does (its pruning is elementwise, like the optimizer).
        Assert.Equal(paper, Run(ColaVariant.Relora, 2).Flops, 6);
        Assert.Equal((18432.0, 18432.0), (Flops.ThinSvd(8, 16), Flops.ThinSvd(16, 8)));   // 14 * 16 * 8^2 + 8 * 8^3
    }

    [Theory]
    [InlineData(ColaVariant.Rac)]
    [InlineData(ColaVariant.Relora)]
    public void Rac_and_relora_resume_exactly_after_a_knot(ColaVariant variant)
    {
        var dir = Directory.CreateTempSubdirectory("variant-resume").FullName;
        try
        {
            var options = Options with { Epochs = 2, Variant = variant, RecordDeltaSpectra = true };
            var chain = new ChainConfig { Length = 2 };
            using var reference = TinyModels.Llama();
            var whole = new ChainTrainer(reference, options, new LoraConfig(), chain, Every3(Path.Combine(dir, "a"))).Train(new RandomLmData(4));
            using (var first = TinyModels.Llama())
            {
                // The knot at step 4 checkpoints (with ReLoRA's pruned optimizer state); the run dies at step 6.
                var trainer = new ChainTrainer(first, options, new LoraConfig(), chain, Every3(Path.Combine(dir, "b")))
                {
                    OnStep = r => { if (r.Step == 6) throw new Interrupted(); },
                };
                Assert.Throws<Interrupted>(() => trainer.Train(new RandomLmData(4)));
            }
            manual_seed(999);
            using var resumedModel = TinyModels.Llama();
            var resumed = new ChainTrainer(resumedModel, options, new LoraConfig(), chain, Every3(Path.Combine(dir, "b")))
                .Train(new RandomLmData(4), resumeFrom: Path.Combine(dir, "b"));
            Assert.Equal(whole.StepLosses, resumed.StepLosses);
            Assert.Equal(whole.TotalFlops, resumed.TotalFlops);
            // The spectrum recorded at the knot before the interruption survives it.
            Assert.Equal(whole.Links.Select(l => l.DeltaEffectiveRank), resumed.Links.Select(l => l.DeltaEffectiveRank));
            Assert.All(resumed.Links, l => Assert.NotNull(l.DeltaEffectiveRank));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
