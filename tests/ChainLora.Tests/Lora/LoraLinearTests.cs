using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Lora;

public class LoraLinearTests
{
    static LoraAdapters InjectWithRandomB(CausalLM model, LoraConfig? config = null)
    {
        var adapters = LoraAdapters.Inject(model, config ?? new LoraConfig());
        using var _ = no_grad();
        foreach (var l in adapters.Layers.Values) l.B.normal_(0, 0.3);
        return adapters;
    }

    [Fact]
    public void Merged_forward_equals_unmerged_forward()
    {
        using var model = TinyModels.Llama();
        var adapters = InjectWithRandomB(model);
        var ids = TinyModels.Tokens(3);
        using var _ = no_grad();
        var unmerged = model.Forward(ids);
        var withoutLora = model.Forward(ids);
        adapters.TieKnot();
        var merged = model.Forward(ids);
        Assert.True(Fixtures.MaxAbsDiff(merged, unmerged) < 1e-5, $"max |Δ| = {Fixtures.MaxAbsDiff(merged, unmerged):E2}");
        Assert.All(adapters.Layers.Values, l => Assert.Equal(0f, l.B.abs().max().item<float>()));
    }

    [Fact]
    public void The_adapter_changes_the_function_so_the_merge_test_can_fail()
    {
        using var model = TinyModels.Llama();
        var ids = TinyModels.Tokens(3);
        using var _ = no_grad();
        var before = model.Forward(ids);
        InjectWithRandomB(model);
        Assert.True(Fixtures.MaxAbsDiff(model.Forward(ids), before) > 1e-3);
    }

    [Theory]
    [InlineData(8, LoraInit.Kaiming)]
    [InlineData(4, LoraInit.Gaussian)]
    public void After_a_knot_and_a_new_link_the_model_computes_the_same_function(int newRank, LoraInit init)
    {
        using var model = TinyModels.Opt();
        var adapters = InjectWithRandomB(model, new LoraConfig { Init = init, Bias = LoraBias.LoraOnly });
        var ids = TinyModels.Tokens(4);
        using var _ = no_grad();
        var before = model.Forward(ids);
        adapters.TieKnot();
        adapters.ExtendChain(newRank, 16);
        var after = model.Forward(ids);
        Assert.True(Fixtures.MaxAbsDiff(after, before) < 1e-5);
        Assert.All(adapters.Layers.Values, l =>
        {
            Assert.Equal(newRank, l.Rank);
            Assert.Equal(new long[] { newRank, l.Base.InFeatures }, l.A.shape);
            Assert.True(l.A.abs().sum().item<float>() > 0, "A must be freshly initialised, not zero");
            Assert.Equal(16.0 / newRank, l.Scaling, 12);
        });
    }

    [Fact]
    public void Total_delta_is_the_sum_of_the_links_and_each_link_has_rank_at_most_r()
    {
        using var model = TinyModels.Llama();
        var original = model.named_parameters().Where(p => p.name.EndsWith("q_proj.weight"))
            .ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var adapters = InjectWithRandomB(model, new LoraConfig { Rank = 3 });
        adapters.TieKnot();
        adapters.ExtendChain(2, 16);
        using (no_grad()) foreach (var l in adapters.Layers.Values) l.B.normal_(0, 0.3);
        adapters.TieKnot();
        var totals = adapters.TotalDeltas();
        foreach (var (name, layer) in adapters.Layers.Where(l => l.Key.EndsWith("q_proj")))
        {
            Assert.Equal([3, 2], layer.TiedLinks.Select(t => t.Rank));
            foreach (var link in layer.TiedLinks)
                Assert.True(linalg.matrix_rank(link.Delta()).item<long>() <= link.Rank);
            var actualDelta = layer.Base.Weight.detach() - original[name + ".weight"];
            Assert.True(Fixtures.MaxAbsDiff(actualDelta, totals[name]) < 1e-5);
            // Two links of rank 3 and 2 build an update of rank up to 5: more than one LoRA could.
            Assert.True(linalg.matrix_rank(totals[name]).item<long>() > 3);
        }
    }

    [Fact]
    public void Only_lora_parameters_and_configured_biases_train_and_receive_gradients()
    {
        using var model = TinyModels.Opt();
        var adapters = LoraAdapters.Inject(model, new LoraConfig { Bias = LoraBias.LoraOnly });
        using (no_grad()) foreach (var l in adapters.Layers.Values) l.B.normal_(0, 0.1);
        var ids = TinyModels.Tokens(5);
        var logits = model.Forward(ids);
        nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, 64), ids[.., 1..].reshape(-1)).backward();
        var expected = new HashSet<string>();
        foreach (var name in adapters.Layers.Keys)
        {
            expected.Add($"{name}.lora.lora_A");
            expected.Add($"{name}.lora.lora_B");
            expected.Add($"{name}.bias");
        }
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.Equal(expected.Contains(name), p.requires_grad);
            if (expected.Contains(name)) Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0, $"{name} got no gradient");
            else Assert.True(p.grad is null, $"frozen {name} received a gradient");
        }
        Assert.Equal(2 * 2 * 2, expected.Count / 3 * 2);
    }

    /// <summary>
    /// A delta whose A and B are finite but whose product B A overflows fp32 before the scaling
    /// (alpha 16 at rank 64: 0.25) is refused too, weights untouched.
    /// </summary>
    [Fact]
    public void A_delta_that_overflows_before_its_scaling_is_refused()
    {
        using var model = TinyModels.Llama();
        var adapters = LoraAdapters.Inject(model, new LoraConfig { Rank = 64, Alpha = 16 });
        var layer = adapters.Layers.Values.First();
        using (no_grad())
        {
            layer.A.fill_(2.4e18f);
            layer.B.fill_(2.4e18f);
        }
        var before = layer.Base.Weight.detach().clone();
        Assert.False(layer.DeltaIsFinite());
        Assert.Throws<KnotRefusedException>(adapters.TieKnot);
        Assert.True(layer.Base.Weight.equal(before).all().item<bool>());
    }

    /// <summary>
    /// Knots merge in row blocks (8 MB of fp32); a 700 x 4096 layer takes a block of 512 rows and a
    /// ragged one of 188: the same weights as the whole delta added at once, rounded once to bf16.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void A_knot_merged_in_row_blocks_equals_the_whole_delta_added_at_once(ScalarType dtype)
    {
        manual_seed(7);
        var linear = new ChainLora.Models.Linear(4096, 700, hasBias: false, dtype);
        using var layer = new LoraLinear(linear, new LoraConfig());
        using (no_grad()) layer.B.normal_(0, 0.1);
        var expected = (linear.Weight.detach().to(ScalarType.Float32) + layer.DeltaWeight()).to(dtype);
        layer.TieKnot();
        Assert.Equal(dtype, linear.Weight.dtype);
        Assert.True(linear.Weight.equal(expected).all().item<bool>(), "block merge differs from the whole merge");
        Assert.Equal(0f, layer.B.abs().max().item<float>());
    }

    [Fact]
    public void A_non_finite_delta_is_refused_and_leaves_every_weight_untouched()
    {
        using var model = TinyModels.Llama();
        var adapters = InjectWithRandomB(model);
        var snapshot = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using (no_grad()) adapters.Layers.Values.Last().B[0, 0] = float.NaN;
        var e = Assert.Throws<KnotRefusedException>(adapters.TieKnot);
        Assert.Contains("not finite", e.Message);
        foreach (var (name, p) in model.named_parameters().Where(p => !p.name.Contains(".lora.")))
            Assert.True(p.detach().allclose(snapshot[name], 0, 0), $"{name} changed");
    }

    [Fact]
    public void A_finite_but_absurd_delta_is_refused_relative_to_its_weight()
    {
        using var model = TinyModels.Llama();
        var adapters = InjectWithRandomB(model);
        var layer = adapters.Layers.Values.First();
        var weightNorm = layer.Base.Weight.norm().item<float>();
        // ||B A|| from r x r products equals the norm of the formed product.
        Assert.Equal(layer.DeltaWeight().norm().item<float>(), WeightMerge.DeltaNorm(layer.A, layer.B, layer.Scaling), 3);
        Assert.Null(layer.KnotRefusal());
        // Scale B so that the delta is 20x the weight: finite, but past the documented bound of 10x.
        using (no_grad()) layer.B.mul_(20 * Math.Max(weightNorm, 1) / WeightMerge.DeltaNorm(layer.A, layer.B, layer.Scaling));
        var snapshot = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var e = Assert.Throws<KnotRefusedException>(adapters.TieKnot);
        Assert.Contains($"exceeds {WeightMerge.MaxRelativeDelta} x max(||W||, 1)", e.Message);
        foreach (var (name, p) in model.named_parameters().Where(p => !p.name.Contains(".lora.")))
            Assert.True(p.detach().allclose(snapshot[name], 0, 0), $"{name} changed");
    }

    [Fact]
    public void Knots_into_bf16_weights_round_once_and_drift_less_than_a_naive_bf16_merge()
    {
        // bf16 keeps 8 significant bits: round-to-nearest errs by at most u|x|, u = 2^-8.
        // Ours: W' = fl(W + s B A) with the sum formed in fp32, one rounding per knot, so after k
        // knots |W_k - exact| <= sum_i u |W_i| <= k u max|W| elementwise (fp32 error is ~2^-24).
        // Naive (a merge without the fp32 upcast): fl(W + fl(s fl(fl(B) fl(A)))) rounds A, B,
        // their product and the sum: error up to u|W'| + ~3u|s B A| per knot. With deltas of the
        // size of W (as in the paper's residual learning), its drift must exceed ours.
        using var model = TinyModels.Llama(seed: 2, dtype: ScalarType.BFloat16);
        var adapters = LoraAdapters.Inject(model, new LoraConfig());
        var layer = adapters.Layers.Values.First();
        var exact = layer.Base.Weight.detach().to(ScalarType.Float64);
        var naive = layer.Base.Weight.detach().clone();
        const int knots = 4;
        using var _ = no_grad();
        for (var k = 0; k < knots; k++)
        {
            foreach (var l in adapters.Layers.Values) l.B.normal_(0, 0.2);
            exact += layer.DeltaWeight().to(ScalarType.Float64);
            var bf = ScalarType.BFloat16;
            naive = naive + (layer.B.to(bf).matmul(layer.A.to(bf)) * layer.Scaling).to(bf);
            adapters.TieKnot();
            adapters.ExtendChain(8, 16);
        }
        var ourError = (layer.Base.Weight.detach().to(ScalarType.Float64) - exact).abs();
        var bound = knots * Math.Pow(2, -8) * exact.abs().max().item<double>();
        Assert.True(ourError.max().item<double>() <= bound, $"max error {ourError.max().item<double>():E3} > bound {bound:E3}");
        var ours = ourError.norm().item<double>();
        var theirs = (naive.to(ScalarType.Float64) - exact).norm().item<double>();
        Assert.True(ours < 0.8 * theirs, $"fp32 knot drift {ours:E3} should be clearly below a naive bf16 merge's {theirs:E3}");
    }

    [Theory]
    [InlineData(0, 16, 0, "rank")]
    [InlineData(8, -1, 0, "alpha")]
    [InlineData(8, 16, 1.0, "dropout")]
    public void Bad_config_values_are_named(int rank, double alpha, double dropout, string field)
    {
        var e = Assert.Throws<ArgumentException>(() => new LoraConfig { Rank = rank, Alpha = alpha, Dropout = dropout }.Validate());
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void Unknown_targets_are_named()
    {
        using var model = TinyModels.Llama();
        var e = Assert.Throws<ArgumentException>(() => LoraAdapters.Inject(model, new LoraConfig { TargetModules = ["qkv_proj"] }));
        Assert.Contains("qkv_proj", e.Message);
    }

    [Fact]
    public void Targets_match_exact_paths_and_suffixes_and_rslora_scales_by_sqrt_r()
    {
        using var model = TinyModels.Llama();
        var adapters = LoraAdapters.Inject(model, new LoraConfig
        {
            Rank = 4, TargetModules = ["model.layers.0.self_attn.q_proj", "down_proj"], UseRsLora = true,
        });
        Assert.Equal(["model.layers.0.mlp.down_proj", "model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"],
            adapters.Layers.Keys.Order());
        Assert.All(adapters.Layers.Values, l => Assert.Equal(16 / 2.0, l.Scaling, 12));
    }

    [Fact]
    public void Kaiming_init_matches_torch_linear_bounds()
    {
        using var model = TinyModels.Llama();
        var adapters = LoraAdapters.Inject(model, new LoraConfig { Rank = 8 });
        var a = adapters.Layers.Values.First().A;
        // kaiming_uniform_(a = sqrt 5): bound = sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(fan_in), fan_in = 32.
        var bound = 1 / Math.Sqrt(32);
        Assert.True(a.abs().max().item<float>() <= bound + 1e-7);
        Assert.True(a.abs().max().item<float>() > bound * 0.8);
    }

    [Fact]
    public void Loaded_factors_replace_every_link_in_place_and_a_misfit_changes_nothing()
    {
        using var model = TinyModels.Llama();
        var adapters = LoraAdapters.Inject(model, new LoraConfig { Rank = 4 });
        var parameters = adapters.TrainableParameters();
        var before = adapters.Layers.ToDictionary(l => l.Key, l => l.Value.A.detach().clone());
        var given = adapters.Layers.ToDictionary(l => l.Key, l => (A: randn(l.Value.A.shape), B: randn(l.Value.B.shape)));

        // One wrong shape, an unknown layer, a missing layer: refused by name, nothing copied.
        var (first, firstLayer) = adapters.Layers.First();
        var misfit = new Dictionary<string, (Tensor A, Tensor B)>(given) { [first] = (randn(3, firstLayer.Base.InFeatures), given[first].B) };
        Assert.Contains($"'{first}'", Assert.Throws<ArgumentException>(() => adapters.LoadFactors(misfit)).Message);
        var unknown = new Dictionary<string, (Tensor A, Tensor B)>(given) { ["model.layers.0.mlp.up_proj"] = given[first] };
        Assert.Contains("'model.layers.0.mlp.up_proj'", Assert.Throws<ArgumentException>(() => adapters.LoadFactors(unknown)).Message);
        var missing = given.Skip(1).ToDictionary(g => g.Key, g => (g.Value.A, g.Value.B));
        Assert.Contains($"'{first}'", Assert.Throws<ArgumentException>(() => adapters.LoadFactors(missing)).Message);
        Assert.All(adapters.Layers, l => Assert.True(l.Value.A.eq(before[l.Key]).all().item<bool>()));

        adapters.LoadFactors(given.ToDictionary(g => g.Key, g => (g.Value.A, g.Value.B)));
        Assert.All(adapters.Layers, l =>
        {
            Assert.True(l.Value.A.eq(given[l.Key].A).all().item<bool>());
            Assert.True(l.Value.B.eq(given[l.Key].B).all().item<bool>());
        });
        // The same parameters: an optimizer made before the load trains the loaded values.
        Assert.True(parameters.SequenceEqual(adapters.TrainableParameters(), ReferenceEqualityComparer.Instance));
    }
}
