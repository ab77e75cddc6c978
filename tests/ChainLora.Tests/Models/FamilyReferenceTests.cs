using System.Text.Json.Nodes;
using ChainLora.Evaluation;
using ChainLora.IO;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>
/// Tiny random checkpoints of the Llama-derived families and of Llama's rope scaling types against
/// an independent PyTorch implementation of transformers' semantics (scripts/make_family_fixtures.py):
/// logits within 1e-4 (6 significant digits, logits of order 1), the NLL, left padding, and greedy
/// generation with the KV cache as transformers' generate runs it.
/// </summary>
public class FamilyReferenceTests : TempFolderTest
{
    const double Tolerance = 1e-4;

    public static TheoryData<string> Fixtures =>
        ["llama-rope-linear", "llama-rope-llama3", "llama-rope-yarn", "llama-rope-dynamic", "qwen2", "qwen3", "mistral", "gemma", "phi3"];

    static string Dir(string name) => ChainLora.Tests.Fixtures.Reference(name);

    static LlamaForCausalLM Load(string name, string? configPath = null)
    {
        var model = new LlamaForCausalLM(LlamaConfig.FromFile(configPath ?? Path.Combine(Dir(name), "config.json")));
        StateDict.LoadStrict(model, SafeTensors.Load(Path.Combine(Dir(name), "model.safetensors")), Dir(name));
        return model;
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void Logits_and_NLL_match_the_reference(string name)
    {
        using var model = Load(name);
        var r = ChainLora.Tests.Fixtures.Json(Path.Combine(Dir(name), "logits.json"));
        using var _ = no_grad();
        var ids = ChainLora.Tests.Fixtures.Ints(r.GetProperty("input_ids"));
        var logits = model.Forward(ids);
        var diff = ChainLora.Tests.Fixtures.MaxAbsDiff(logits, ChainLora.Tests.Fixtures.Floats3(r.GetProperty("logits")));
        var nll = nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, model.VocabSize).to(ScalarType.Float64), ids[.., 1..].reshape(-1)).item<double>();
        var expected = r.GetProperty("loss").GetDouble();
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: NLL {nll:F6} vs {expected:F6} (|Δ| {Math.Abs(nll - expected):E2}), max |Δlogit| = {diff:E2}");
        Assert.True(diff < Tolerance, $"{name}: max |Δlogit| = {diff:E2}");
        Assert.Equal(expected, nll, 4);
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void Left_padded_logits_match_the_reference_at_real_positions(string name)
    {
        using var model = Load(name);
        var p = ChainLora.Tests.Fixtures.Json(Path.Combine(Dir(name), "logits.json")).GetProperty("padded");
        using var _ = no_grad();
        var mask = ChainLora.Tests.Fixtures.Ints(p.GetProperty("attention_mask"));
        var logits = model.Forward(ChainLora.Tests.Fixtures.Ints(p.GetProperty("input_ids")), mask);
        var valid = mask.to(ScalarType.Bool).unsqueeze(-1);
        var diff = (logits - ChainLora.Tests.Fixtures.Floats3(p.GetProperty("logits"))).abs().masked_fill(valid.logical_not(), 0).max().item<float>();
        Assert.True(diff < Tolerance, $"{name}: max |Δlogit| at real positions = {diff:E2}");
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void Greedy_generation_with_the_kv_cache_matches_the_reference(string name)
    {
        using var model = Load(name);
        var g = ChainLora.Tests.Fixtures.Json(Path.Combine(Dir(name), "greedy.json"));
        var prompt = g.GetProperty("prompt").EnumerateArray().Select(x => x.GetInt32()).ToList();
        var expected = g.GetProperty("new_tokens").EnumerateArray().Select(x => x.GetInt32()).ToList();
        // Dynamic scaling matters past max_position_embeddings, which Generate refuses to reach: decode by hand.
        var produced = prompt.Count + expected.Count <= model.MaxPositions
            ? Generation.Generate(model, [prompt], new GenerationOptions(MaxNewTokens: expected.Count))[0]
            : DecodeWithCache(model, prompt, expected.Count);
        Assert.Equal(expected, produced);
    }

    /// <summary>Sliding windows under both attention kernels, with left padding, and with gradient checkpointing (training's path).</summary>
    [Theory]
    [InlineData("mistral", AttentionKernel.Math)]
    [InlineData("mistral", AttentionKernel.Fused)]
    [InlineData("phi3", AttentionKernel.Math)]
    [InlineData("phi3", AttentionKernel.Fused)]
    public void Sliding_windows_match_the_reference_under_each_kernel_padded_and_checkpointed(string name, AttentionKernel kernel)
    {
        using var model = Load(name);
        model.AttentionKernel = kernel;
        model.GradientCheckpointing = true;
        var p = ChainLora.Tests.Fixtures.Json(Path.Combine(Dir(name), "logits.json")).GetProperty("padded");
        var mask = ChainLora.Tests.Fixtures.Ints(p.GetProperty("attention_mask"));
        var logits = model.Forward(ChainLora.Tests.Fixtures.Ints(p.GetProperty("input_ids")), mask).detach();
        var diff = (logits - ChainLora.Tests.Fixtures.Floats3(p.GetProperty("logits"))).abs()
            .masked_fill(mask.to(ScalarType.Bool).unsqueeze(-1).logical_not(), 0).max().item<float>();
        Assert.True(diff < Tolerance, $"{name} {kernel}: max |Δlogit| at real positions = {diff:E2}");
    }

    [Theory]
    [InlineData("mistral")]
    [InlineData("phi3")]
    public void Left_padded_batched_generation_with_a_window_equals_each_prompt_alone(string name)
    {
        using var model = Load(name);
        List<int> longer = [5, 9, 13, 17, 21, 25, 29], shorter = [40, 41, 42];
        var batched = Generation.Generate(model, [longer, shorter], new GenerationOptions(MaxNewTokens: 9));
        Assert.Equal(Generation.Generate(model, [longer], new GenerationOptions(MaxNewTokens: 9))[0], batched[0]);
        Assert.Equal(Generation.Generate(model, [shorter], new GenerationOptions(MaxNewTokens: 9))[0], batched[1]);
    }

    static List<int> DecodeWithCache(CausalLM model, List<int> prompt, int count)
    {
        using var _ = no_grad();
        using var cache = model.NewCache();
        var produced = new List<int>();
        var input = tensor(prompt.Select(t => (long)t).ToArray(), [1, prompt.Count]);
        for (var i = 0; i < count; i++)
        {
            var next = (int)model.Forward(input, null, cache)[0, -1].argmax().item<long>();
            produced.Add(next);
            input = tensor(new long[] { next }, [1, 1]);
        }
        return produced;
    }

    /// <summary>Each fixture is sensitive to the feature it pins: without it the logits move at least 10x the tolerance.</summary>
    [Theory]
    [InlineData("llama-rope-linear", "rope_scaling", null)]
    [InlineData("llama-rope-llama3", "rope_scaling", null)]
    [InlineData("llama-rope-yarn", "rope_scaling", null)]
    [InlineData("mistral", "sliding_window", null)]
    [InlineData("phi3", "sliding_window", null)]
    [InlineData("phi3", "partial_rotary_factor", "1.0")]
    [InlineData("gemma", "hidden_activation", "\"gelu\"")]
    public void Without_the_feature_the_logits_differ(string name, string field, string? value)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir(name), "config.json")))!.AsObject();
        config[field] = value is null ? null : JsonNode.Parse(value);
        var path = PathIn("config.json");
        File.WriteAllText(path, config.ToJsonString());
        using var model = Load(name, path);
        var r = ChainLora.Tests.Fixtures.Json(Path.Combine(Dir(name), "logits.json"));
        using var _ = no_grad();
        var diff = ChainLora.Tests.Fixtures.MaxAbsDiff(model.Forward(ChainLora.Tests.Fixtures.Ints(r.GetProperty("input_ids"))),
            ChainLora.Tests.Fixtures.Floats3(r.GetProperty("logits")));
        Assert.True(diff > 10 * Tolerance, $"{name} without {field}: max |Δlogit| = {diff:E2}, the fixture does not pin it");
    }

    [Fact]
    public void Dynamic_scaling_changes_nothing_within_max_position_embeddings_and_rotates_beyond()
    {
        var config = LlamaConfig.FromFile(Path.Combine(Dir("llama-rope-dynamic"), "config.json"));
        var plain = new RotaryEmbedding(config.RotaryDim, config.RopeTheta);
        var dynamic = new RotaryEmbedding(config.RotaryDim, config.RopeTheta, config.RopeScaling, config.MaxPositionEmbeddings);
        using var _ = no_grad();
        var within = arange(16L).unsqueeze(0);
        Assert.Equal(0, ChainLora.Tests.Fixtures.MaxAbsDiff(plain.For(within).Cos, dynamic.For(within).Cos));
        var beyond = arange(17L).unsqueeze(0);
        Assert.True(ChainLora.Tests.Fixtures.MaxAbsDiff(plain.For(beyond).Cos, dynamic.For(beyond).Cos) > 1e-3);
    }
}
