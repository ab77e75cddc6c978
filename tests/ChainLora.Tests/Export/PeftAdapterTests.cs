using System.Text.Json;
using ChainLora.Export;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Export;

public class PeftAdapterTests : TempFolderTest
{
    [Fact]
    public void A_chain_exports_as_one_adapter_whose_delta_is_the_sum_of_the_links_deltas()
    {
        using var model = TinyModels.Llama();
        var adapters = ExportKit.ThreeLinkChain(model);
        using var adapter = PeftAdapter.FromChain(adapters);
        var totals = adapters.TotalDeltas();

        Assert.Equal((16, 16.0, false), (adapter.Config.R, adapter.Config.LoraAlpha, adapter.Config.UseRsLora));
        Assert.Equal(["q_proj", "v_proj"], adapter.Config.TargetModules);
        Assert.Equal(totals.Keys.Order(), adapter.Modules.Keys.Order());
        foreach (var (module, f) in adapter.Modules)
        {
            Assert.Equal(16, f.Rank);
            Assert.Equal(1.0, f.Scaling);
            using var delta = f.B.matmul(f.A);
            Assert.True(Fixtures.MaxAbsDiff(delta, totals[module]) < 1e-5, $"{module}: max |Δ| = {Fixtures.MaxAbsDiff(delta, totals[module]):E2}");
        }
    }

    [Fact]
    public void A_single_link_keeps_its_rank_alpha_and_factors()
    {
        using var model = TinyModels.Llama();
        var adapters = LoraAdapters.Inject(model, new LoraConfig { Rank = 8, Alpha = 16 });
        ExportKit.RandomizeB(adapters, 5);
        using var adapter = PeftAdapter.FromChain(adapters);
        Assert.Equal((8, 16.0), (adapter.Config.R, adapter.Config.LoraAlpha));
        foreach (var (module, layer) in adapters.Layers)
        {
            Assert.True(adapter.Modules[module].A.allclose(layer.A.detach(), 0, 0));
            Assert.True(adapter.Modules[module].B.allclose(layer.B.detach(), 0, 0));
            Assert.Equal(2.0, adapter.Modules[module].Scaling);
        }
    }

    [Fact]
    public void A_link_extended_but_never_trained_costs_no_rank()
    {
        using var model = TinyModels.Llama();
        var adapters = ExportKit.ThreeLinkChain(model);
        adapters.TieKnot();
        adapters.ExtendChain(4, 8); // B = 0 on every layer
        using var adapter = PeftAdapter.FromChain(adapters);
        Assert.Equal(16, adapter.Config.R);
        var totals = adapters.TotalDeltas();
        foreach (var (module, f) in adapter.Modules) Assert.True(Fixtures.MaxAbsDiff(f.Delta(), totals[module]) < 1e-5);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Export_then_import_onto_the_pretrained_weights_gives_the_trained_logits(bool opt)
    {
        // OPT trains the adapted layers' biases (the paper's setting), which the adapter carries.
        using CausalLM trained = opt ? TinyModels.Opt() : TinyModels.Llama();
        // The pretrained weights are copied, not re-drawn: other tests may use torch's global RNG meanwhile.
        var pretrained = Weights(trained);
        CausalLM Pretrained()
        {
            CausalLM model = opt ? TinyModels.Opt() : TinyModels.Llama();
            StateDict.LoadStrict(model, pretrained, "pretrained copy");
            return model;
        }
        var adapters = ExportKit.ThreeLinkChain(trained, new LoraConfig { Rank = 8, Alpha = 16, Bias = opt ? LoraBias.LoraOnly : LoraBias.None });
        if (opt) ExportKit.PerturbBiases(trained, 9);
        var expected = ExportKit.Logits(trained);
        var dir = PathIn("adapter");
        using (var adapter = PeftAdapter.FromChain(adapters)) adapter.Save(dir, "tiny-base");

        using var imported = PeftAdapter.Load(dir);
        using var merged = Pretrained();
        var before = ExportKit.Logits(merged);
        imported.MergeInto(merged);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(merged), expected);
        Assert.True(diff < 1e-5, $"merged: max |Δ| = {diff:E2}");
        Assert.True(Fixtures.MaxAbsDiff(before, expected) > 1e-3, "the chain must change the function for the test to mean anything");

        using var live = Pretrained();
        var attached = imported.AttachTo(live);
        diff = Fixtures.MaxAbsDiff(ExportKit.Logits(live), expected);
        Assert.True(diff < 1e-5, $"attached: max |Δ| = {diff:E2}");
        Assert.Equal(16, attached.Layers.Values.First().Rank);
        Assert.Equal(opt, attached.TrainableParameters().Count > attached.Layers.Count * 2);
    }

    [Fact]
    public void The_saved_files_are_in_PEFTs_format()
    {
        using var model = TinyModels.Opt();
        var adapters = ExportKit.ThreeLinkChain(model, new LoraConfig { Rank = 8, Alpha = 16, Bias = LoraBias.LoraOnly });
        var dir = PathIn("adapter");
        using (var adapter = PeftAdapter.FromChain(adapters)) adapter.Save(dir, "facebook/opt-125m");

        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json"))).RootElement;
        var names = config.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(names.Order(StringComparer.Ordinal), names); // sort_keys=True, as PEFT writes
        Assert.Equal("LORA", config.GetProperty("peft_type").GetString());
        Assert.Equal("CAUSAL_LM", config.GetProperty("task_type").GetString());
        Assert.Equal(16, config.GetProperty("r").GetInt32());
        Assert.Equal("16", config.GetProperty("lora_alpha").GetRawText()); // an int, as in PEFT's files
        Assert.Equal(["q_proj", "v_proj"], config.GetProperty("target_modules").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("lora_only", config.GetProperty("bias").GetString());
        Assert.False(config.GetProperty("use_rslora").GetBoolean());
        Assert.False(config.GetProperty("fan_in_fan_out").GetBoolean());
        Assert.Equal("facebook/opt-125m", config.GetProperty("base_model_name_or_path").GetString());
        Assert.Equal(JsonValueKind.Null, config.GetProperty("modules_to_save").ValueKind);

        var header = SafeTensors.ReadHeader(Path.Combine(dir, "adapter_model.safetensors"));
        Assert.Equal("pt", header.Metadata["format"]);
        var a = header.Tensors["base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight"];
        var b = header.Tensors["base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_B.weight"];
        Assert.Equal("F32", a.DType);
        Assert.Equal([16, 32], a.Shape);
        Assert.Equal([32, 16], b.Shape);
        // PEFT wraps an adapted layer as base_layer, so that is where its trained bias lives.
        Assert.Contains("base_model.model.model.decoder.layers.1.self_attn.v_proj.base_layer.bias", header.Tensors.Keys);
        Assert.DoesNotContain(header.Tensors.Keys, k => k.Contains("k_proj") || k.Contains(".lora.") || k.Contains("layer_norm"));
        Assert.Equal(2 * 2 * 3, header.Tensors.Count); // 2 layers x (q, v) x (A, B, bias)
    }

    // --- Adapters as PEFT itself writes them.

    const string PeftConfigJson = """
        {
          "alpha_pattern": {},
          "auto_mapping": null,
          "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
          "bias": "none",
          "fan_in_fan_out": false,
          "inference_mode": true,
          "init_lora_weights": true,
          "layer_replication": null,
          "layers_pattern": null,
          "layers_to_transform": null,
          "loftq_config": {},
          "lora_alpha": 8,
          "lora_dropout": 0.05,
          "megatron_config": null,
          "megatron_core": "megatron.core",
          "modules_to_save": null,
          "peft_type": "LORA",
          "r": 4,
          "rank_pattern": {},
          "revision": null,
          "target_modules": ["q_proj", "v_proj"],
          "task_type": "CAUSAL_LM",
          "use_dora": false,
          "use_rslora": false
        }
        """;

    /// <summary>Writes a PEFT-style adapter for TinyModels.Llama (q_proj 32x32, v_proj 16x32); returns its factors by module.</summary>
    Dictionary<string, (Tensor A, Tensor B)> WritePeftAdapter(string dir, string adapterName = "", string config = PeftConfigJson,
        Func<string, int>? rankOf = null, Func<string, string, Tensor, Tensor>? edit = null)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config);
        manual_seed(77);
        var factors = new Dictionary<string, (Tensor, Tensor)>();
        var tensors = new Dictionary<string, Tensor>();
        foreach (var layer in new[] { 0, 1 })
            foreach (var (proj, outFeatures) in new[] { ("q_proj", 32), ("v_proj", 16) })
            {
                var module = $"model.layers.{layer}.self_attn.{proj}";
                var r = rankOf?.Invoke(module) ?? 4;
                var (a, b) = (randn(r, 32) * 0.2, randn(outFeatures, r) * 0.2);
                factors[module] = (a, b);
                var keyA = $"base_model.model.{module}.lora_A{adapterName}.weight";
                var keyB = $"base_model.model.{module}.lora_B{adapterName}.weight";
                tensors[keyA] = edit?.Invoke(keyA, module, a) ?? a;
                tensors[keyB] = edit?.Invoke(keyB, module, b) ?? b;
            }
        SafeTensors.Save(Path.Combine(dir, "adapter_model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return factors;
    }

    static Dictionary<string, Tensor> Weights(CausalLM model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    [Theory]
    [InlineData("")]
    [InlineData(".default")]
    public void A_PEFT_made_adapter_merges_with_scale_alpha_over_r(string adapterName)
    {
        var dir = PathIn("peft");
        var factors = WritePeftAdapter(dir, adapterName);
        using var model = TinyModels.Llama();
        var before = Weights(model);
        using var adapter = PeftAdapter.Load(dir);
        Assert.Equal((4, 8.0, 0.05), (adapter.Config.R, adapter.Config.LoraAlpha, adapter.Config.LoraDropout));
        adapter.MergeInto(model);

        var after = Weights(model);
        foreach (var (module, (a, b)) in factors)
        {
            var expected = before[module + ".weight"] + 2.0 * b.matmul(a); // scale = 8 / 4
            Assert.True(Fixtures.MaxAbsDiff(after[module + ".weight"], expected) < 1e-6, module);
        }
        foreach (var name in after.Keys.Where(n => !factors.ContainsKey(n[..n.LastIndexOf('.')])))
            Assert.True(after[name].allclose(before[name], 0, 0), $"{name} must not change");
    }

    [Fact]
    public void Rank_pattern_alpha_pattern_and_rslora_set_each_modules_scale()
    {
        var config = PeftConfigJson
            .Replace("\"rank_pattern\": {}", "\"rank_pattern\": {\"model.layers.1.self_attn.q_proj\": 2}")
            .Replace("\"alpha_pattern\": {}", "\"alpha_pattern\": {\"v_proj\": 2}")
            .Replace("\"use_rslora\": false", "\"use_rslora\": true");
        var dir = PathIn("peft");
        var factors = WritePeftAdapter(dir, config: config, rankOf: m => m == "model.layers.1.self_attn.q_proj" ? 2 : 4);
        using var adapter = PeftAdapter.Load(dir);
        Assert.Equal(8 / Math.Sqrt(4), adapter.Modules["model.layers.0.self_attn.q_proj"].Scaling, 12);
        Assert.Equal(8 / Math.Sqrt(2), adapter.Modules["model.layers.1.self_attn.q_proj"].Scaling, 12);
        Assert.Equal(2 / Math.Sqrt(4), adapter.Modules["model.layers.0.self_attn.v_proj"].Scaling, 12);
        Assert.Equal(2, adapter.Modules["model.layers.1.self_attn.q_proj"].Rank);

        // Saved again and reloaded, every module keeps its delta.
        adapter.Save(PathIn("again"));
        using var again = PeftAdapter.Load(PathIn("again"));
        foreach (var (module, f) in adapter.Modules)
            Assert.True(Fixtures.MaxAbsDiff(again.Modules[module].Delta(), f.Delta()) < 1e-6, module);
        Assert.Throws<ArgumentException>(() => adapter.AttachTo(TinyModels.Llama()));
    }

    [Fact]
    public void A_PEFT_made_adapter_with_bias_all_sets_adapted_and_other_biases()
    {
        var dir = PathIn("peft");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), PeftConfigJson
            .Replace("\"bias\": \"none\"", "\"bias\": \"all\"").Replace("[\"q_proj\", \"v_proj\"]", "[\"q_proj\"]"));
        manual_seed(5);
        const string q = "model.decoder.layers.0.self_attn.q_proj";
        var (a, b, qBias, fc1Bias) = (randn(4, 32), randn(32, 4), randn(32), randn(64));
        SafeTensors.Save(Path.Combine(dir, "adapter_model.safetensors"), new Dictionary<string, Tensor>
        {
            [$"base_model.model.{q}.lora_A.weight"] = a,
            [$"base_model.model.{q}.lora_B.weight"] = b,
            [$"base_model.model.{q}.base_layer.bias"] = qBias,
            ["base_model.model.model.decoder.layers.1.fc1.bias"] = fc1Bias,
        });
        using var adapter = PeftAdapter.Load(dir);
        using var model = TinyModels.Opt();
        adapter.MergeInto(model);
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.True(p[q + ".bias"].allclose(qBias, 0, 0));
        Assert.True(p["model.decoder.layers.1.fc1.bias"].allclose(fc1Bias, 0, 0));
    }

    // --- Errors name the file, the key and the shapes.

    [Fact]
    public void A_folder_without_adapter_config_is_refused()
    {
        var dir = PathIn("peft");
        WritePeftAdapter(dir);
        File.Delete(Path.Combine(dir, "adapter_config.json"));
        var e = Assert.Throws<FileNotFoundException>(() => PeftAdapter.Load(dir));
        Assert.Contains("adapter_config.json", e.Message);
    }

    [Fact]
    public void A_pickle_adapter_is_refused_with_a_pointer_to_safetensors()
    {
        var dir = PathIn("peft");
        WritePeftAdapter(dir);
        File.Move(Path.Combine(dir, "adapter_model.safetensors"), Path.Combine(dir, "adapter_model.bin"));
        var e = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(dir));
        Assert.Contains("adapter_model.bin", e.Message);
        Assert.Contains("safetensors", e.Message);
    }

    [Fact]
    public void A_factor_whose_shape_does_not_fit_the_model_is_named()
    {
        var dir = PathIn("peft");
        const string bad = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";
        WritePeftAdapter(dir, edit: (key, _, t) => key == bad ? randn(4, 33) : t);
        using var adapter = PeftAdapter.Load(dir);
        using var model = TinyModels.Llama();
        var before = Weights(model);
        var e = Assert.Throws<InvalidDataException>(() => adapter.MergeInto(model));
        Assert.Contains(bad, e.Message);
        Assert.Contains("[4, 33]", e.Message);
        Assert.All(Weights(model), w => Assert.True(w.Value.allclose(before[w.Key], 0, 0), $"{w.Key} changed although the merge was refused"));
    }

    [Fact]
    public void A_rank_that_contradicts_the_config_is_named()
    {
        var dir = PathIn("peft");
        WritePeftAdapter(dir, rankOf: m => m.EndsWith("layers.0.self_attn.q_proj") ? 3 : 4);
        var e = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(dir));
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", e.Message);
        Assert.Contains("[3, 32]", e.Message);
    }

    [Fact]
    public void A_module_the_model_lacks_is_named()
    {
        var dir = PathIn("peft");
        WritePeftAdapter(dir);
        using var adapter = PeftAdapter.Load(dir);
        using var opt = TinyModels.Opt(); // OPT's paths are model.decoder.layers.*
        var e = Assert.Throws<InvalidDataException>(() => adapter.MergeInto(opt));
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", e.Message);
    }

    [Theory]
    [InlineData("\"peft_type\": \"LORA\",", "peft_type")]
    [InlineData("\"r\": 4,", "'r'")]
    [InlineData("\"use_dora\": false", "DoRA", "\"use_dora\": true")]
    public void A_config_missing_a_field_or_asking_for_DoRA_is_refused(string remove, string named, string replacement = "")
    {
        var dir = PathIn("peft");
        WritePeftAdapter(dir, config: PeftConfigJson.Replace(remove, replacement));
        var e = Assert.Throws<InvalidDataException>(() => PeftAdapter.Load(dir));
        Assert.Contains(named, e.Message);
    }
}
