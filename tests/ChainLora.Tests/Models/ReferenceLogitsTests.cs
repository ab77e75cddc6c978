using ChainLora.Evaluation;
using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>
/// Logits of tiny random OPT and Llama checkpoints against an independent PyTorch implementation
/// (scripts/make_reference_fixtures.py), within 1e-4 in fp32: the fixtures are rounded to 6
/// significant digits and the logits are of order 1.
/// </summary>
public class ReferenceLogitsTests
{
    const double Tolerance = 1e-4;

    public static TheoryData<string> HfModels => ["opt-preln", "opt-postln", "opt-preln-projected", "llama-gqa", "llama-tied"];

    static CausalLM LoadHf(string name)
    {
        var dir = Fixtures.Reference(name);
        var config = Path.Combine(dir, "config.json");
        object cfg = ConfigJson.ModelType(config) == "opt" ? OptConfig.FromFile(config) : LlamaConfig.FromFile(config);
        var model = PretrainedModel.Create(cfg);
        StateDict.LoadStrict(model, SafeTensors.Load(Path.Combine(dir, "model.safetensors")), dir);
        return model;
    }

    [Theory, MemberData(nameof(HfModels))]
    public void Logits_match_reference(string name)
    {
        using var model = LoadHf(name);
        var r = Fixtures.Json(Path.Combine(Fixtures.Reference(name), "logits.json"));
        using var _ = no_grad();
        var logits = model.Forward(Fixtures.Ints(r.GetProperty("input_ids")));
        var diff = Fixtures.MaxAbsDiff(logits, Fixtures.Floats3(r.GetProperty("logits")));
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: max |Δlogit| = {diff:E2}");
        Assert.True(diff < Tolerance, $"{name}: max |Δlogit| = {diff:E2}");

        var ids = Fixtures.Ints(r.GetProperty("input_ids"));
        var loss = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, model.VocabSize), ids[.., 1..].reshape(-1));
        Assert.Equal(r.GetProperty("loss").GetDouble(), loss.item<float>(), 4);
    }

    [Theory, MemberData(nameof(HfModels))]
    public void Left_padded_logits_match_reference_at_real_positions(string name)
    {
        using var model = LoadHf(name);
        var p = Fixtures.Json(Path.Combine(Fixtures.Reference(name), "logits.json")).GetProperty("padded");
        using var _ = no_grad();
        var mask = Fixtures.Ints(p.GetProperty("attention_mask"));
        var logits = model.Forward(Fixtures.Ints(p.GetProperty("input_ids")), mask);
        var valid = mask.to(ScalarType.Bool).unsqueeze(-1);
        var expected = Fixtures.Floats3(p.GetProperty("logits"));
        var diff = (logits - expected).abs().masked_fill(valid.logical_not(), 0).max().item<float>();
        Assert.True(diff < Tolerance, $"{name}: max |Δlogit| at real positions = {diff:E2}");
        Assert.False(logits.isnan().any().item<bool>(), "padded positions must stay finite");
    }

    [Theory, MemberData(nameof(HfModels))]
    public void Greedy_generation_with_kv_cache_matches_reference(string name)
    {
        using var model = LoadHf(name);
        var g = Fixtures.Json(Path.Combine(Fixtures.Reference(name), "greedy.json"));
        var prompt = g.GetProperty("prompt").EnumerateArray().Select(x => x.GetInt32()).ToList();
        var expected = g.GetProperty("new_tokens").EnumerateArray().Select(x => x.GetInt32()).ToList();
        var produced = Generation.Generate(model, [prompt], new GenerationOptions(MaxNewTokens: expected.Count));
        Assert.Equal(expected, produced[0]);
    }

    [Fact]
    public void Llama2c_checkpoint_with_interleaved_rotary_matches_reference()
    {
        var dir = Fixtures.Reference("llama2c-tiny");
        var (header, tensors) = Llama2cCheckpoint.Load(Path.Combine(dir, "model.bin"));
        using var model = new LlamaForCausalLM(LlamaConfig.FromLlama2c(header));
        StateDict.LoadStrict(model, tensors, dir);
        var r = Fixtures.Json(Path.Combine(dir, "logits.json"));
        using var _ = no_grad();
        var logits = model.Forward(Fixtures.Ints(r.GetProperty("input_ids")));
        var diff = Fixtures.MaxAbsDiff(logits, Fixtures.Floats3(r.GetProperty("logits")));
        TestContext.Current.TestOutputHelper?.WriteLine($"llama2c-tiny: max |Δlogit| = {diff:E2}");
        Assert.True(diff < Tolerance, $"llama2c-tiny: max |Δlogit| = {diff:E2}");
    }

    [Fact]
    public void Without_the_rotary_permutation_llama2c_logits_differ()
    {
        // The permutation is what makes HF rotate-half equal llama2.c's interleaved rotation.
        var dir = Fixtures.Reference("llama2c-tiny");
        var (header, tensors) = Llama2cCheckpoint.Load(Path.Combine(dir, "model.bin"));
        foreach (var key in tensors.Keys.Where(k => k.Contains("q_proj")).ToList())
            tensors[key] = Unpermute(tensors[key], header.NumHeads);
        using var model = new LlamaForCausalLM(LlamaConfig.FromLlama2c(header));
        StateDict.LoadStrict(model, tensors, dir);
        var r = Fixtures.Json(Path.Combine(dir, "logits.json"));
        using var _ = no_grad();
        var diff = Fixtures.MaxAbsDiff(model.Forward(Fixtures.Ints(r.GetProperty("input_ids"))), Fixtures.Floats3(r.GetProperty("logits")));
        Assert.True(diff > 1e-2, $"unpermuted q should change the logits, max |Δ| = {diff:E2}");
    }

    static Tensor Unpermute(Tensor w, int heads)
    {
        var (rows, cols) = (w.shape[0], w.shape[1]);
        return w.view(heads, 2, rows / heads / 2, cols).transpose(1, 2).reshape(rows, cols);
    }

    [Fact]
    public void Bf16_weights_stay_close_to_fp32()
    {
        var dir = Fixtures.Reference("llama-gqa");
        var cfg = LlamaConfig.FromFile(Path.Combine(dir, "config.json"));
        var tensors = SafeTensors.Load(Path.Combine(dir, "model.safetensors"));
        using var fp32 = new LlamaForCausalLM(cfg);
        using var bf16 = new LlamaForCausalLM(cfg, ScalarType.BFloat16);
        StateDict.LoadStrict(fp32, tensors, dir);
        StateDict.LoadStrict(bf16, tensors, dir);
        var ids = Fixtures.Ints(Fixtures.Json(Path.Combine(dir, "logits.json")).GetProperty("input_ids"));
        using var _ = no_grad();
        var a = fp32.Forward(ids);
        var b = bf16.Forward(ids);
        Assert.Equal(ScalarType.Float32, b.dtype);
        var diff = Fixtures.MaxAbsDiff(a, b);
        Assert.InRange(diff, 1e-6, 0.1); // bf16 rounds (8 bits of mantissa) but stays close
    }

    [Fact]
    public void Strict_loading_names_missing_and_unexpected_keys()
    {
        var dir = Fixtures.Reference("opt-preln");
        var tensors = SafeTensors.Load(Path.Combine(dir, "model.safetensors"));
        using var model = new OptForCausalLM(OptConfig.FromFile(Path.Combine(dir, "config.json")));
        tensors.Remove("model.decoder.layers.1.fc2.bias");
        tensors["model.decoder.layers.9.fc2.bias"] = zeros(32);
        var e = Assert.Throws<InvalidDataException>(() => StateDict.LoadStrict(model, tensors, dir));
        Assert.Contains("Missing: model.decoder.layers.1.fc2.bias", e.Message);
        Assert.Contains("Unexpected: model.decoder.layers.9.fc2.bias", e.Message);
    }

    [Fact]
    public void Strict_loading_names_a_wrong_shape()
    {
        var dir = Fixtures.Reference("llama-gqa");
        var tensors = SafeTensors.Load(Path.Combine(dir, "model.safetensors"));
        tensors["model.norm.weight"] = ones(31);
        using var model = new LlamaForCausalLM(LlamaConfig.FromFile(Path.Combine(dir, "config.json")));
        var e = Assert.Throws<InvalidDataException>(() => StateDict.LoadStrict(model, tensors, dir));
        Assert.Contains("'model.norm.weight' has shape [31]", e.Message);
    }
}
