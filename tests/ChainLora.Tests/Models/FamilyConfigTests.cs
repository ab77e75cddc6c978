using System.Text.Json.Nodes;
using ChainLora.Export;
using ChainLora.Loading;
using ChainLora.Models;

namespace ChainLora.Tests.Models;

/// <summary>
/// config.json fields that change the maths are honoured or refused by name: one line naming the
/// file, the field and the value. Nothing unknown is ignored.
/// </summary>
public class FamilyConfigTests : TempFolderTest
{
    /// <summary>A fixture's config.json with the fields of <paramref name="patch"/> set and <paramref name="remove"/> removed, in a temp folder.</summary>
    string Patched(string fixture, string patch, params string[] remove)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Reference(fixture), "config.json")))!.AsObject();
        foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject()) config[key] = value?.DeepClone();
        foreach (var key in remove) config.Remove(key);
        var dir = PathIn(fixture + remove.Length + patch.GetHashCode());
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "config.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    public static TheoryData<string, string, string[]> Refused => new()
    {
        { "llama-rope-yarn", """{"rope_scaling": {"rope_type": "longrope", "factor": 4.0, "short_factor": [1], "long_factor": [1]}}""", ["rope_scaling", "longrope"] },
        { "llama-rope-yarn", """{"rope_scaling": {"rope_type": "su", "factor": 4.0}}""", ["rope_scaling", "su"] },
        { "llama-rope-llama3", """{"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}}""", ["rope_scaling.low_freq_factor", "null"] },
        { "llama-rope-yarn", """{"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "short_factor": [1.0]}}""", ["rope_scaling.short_factor", "[1.0]"] },
        { "llama-rope-linear", """{"rope_scaling": {"type": "linear", "rope_type": "dynamic", "factor": 2.0}}""", ["rope_scaling", "linear", "dynamic"] },
        { "llama-rope-linear", """{"rope_scaling": {"type": "linear", "factor": 0}}""", ["rope_scaling.factor", "0"] },
        { "llama-rope-linear", """{"rope_scaling": {"factor": 2.0}}""", ["rope_scaling", "no rope_type"] },
        { "llama-rope-linear", """{"quantization_config": {"quant_method": "bitsandbytes"}}""", ["quantization_config", "quant_method"] },
        { "llama-rope-linear", """{"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}""", ["rope_parameters"] },
        { "llama-rope-linear", """{"attention_dropout": 0.1}""", ["attention_dropout", "0.1"] },
        { "llama-rope-linear", """{"hidden_act": "gelu"}""", ["hidden_act", "gelu"] },
        { "qwen2", """{"use_sliding_window": true}""", ["use_sliding_window", "True"] },
        { "qwen2", """{"layer_types": ["full_attention", "sliding_attention"]}""", ["layer_types", "sliding_attention"] },
        { "qwen2", """{"mlp_bias": true}""", ["mlp_bias", "qwen2"] },
        { "qwen3", """{"head_dim": 7}""", ["head_dim", "7"] },
        { "mistral", """{"sliding_window": 0}""", ["sliding_window", "0"] },
        { "mistral", """{"attention_bias": true}""", ["attention_bias", "mistral"] },
        { "gemma", """{"hidden_activation": "relu"}""", ["hidden_activation", "relu"] },
        { "gemma", """{"final_logit_softcapping": 30.0}""", ["final_logit_softcapping", "30"] },
        { "phi3", """{"rope_scaling": {"type": "longrope", "short_factor": [1.0], "long_factor": [2.0]}}""", ["rope_scaling", "longrope"] },
        { "phi3", """{"resid_pdrop": 0.1}""", ["resid_pdrop", "0.1"] },
        { "phi3", """{"partial_rotary_factor": 0.1}""", ["partial_rotary_factor", "0.1", "rotates 0 dims"] },
        { "phi3", """{"attention_bias": true}""", ["attention_bias", "phi3"] },
    };

    [Theory, MemberData(nameof(Refused))]
    public void A_field_that_changes_the_maths_and_is_not_implemented_is_refused_by_name(string fixture, string patch, string[] named)
    {
        var path = Patched(fixture, patch);
        var e = Assert.Throws<InvalidDataException>(() => LlamaConfig.FromFile(path));
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith(path, e.Message);
        foreach (var n in named) Assert.Contains(n, e.Message);
    }

    [Fact]
    public void The_cli_refuses_an_unknown_rope_type_with_exit_2_and_one_line_naming_file_field_and_value()
    {
        var config = Patched("llama-rope-linear", """{"rope_scaling": {"rope_type": "longrope", "factor": 4.0}}""");
        var text = PathIn("text.txt");
        File.WriteAllText(text, "hello");
        var (exit, _, error) = CliHarness.Run("perplexity", "--model", Path.GetDirectoryName(config)!, "--text", text);
        Assert.Equal(2, exit);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(config, line);
        Assert.Contains("rope_scaling", line);
        Assert.Contains("longrope", line);
    }

    [Fact]
    public void A_model_type_transformers_does_not_derive_from_llama_here_is_refused_naming_it()
    {
        var dir = Path.GetDirectoryName(Patched("gemma", """{"model_type": "gemma2"}"""))!;
        var e = Assert.Throws<InvalidDataException>(() => PretrainedModel.Load(dir));
        Assert.Contains("'gemma2' is not supported", e.Message);
        Assert.Contains("qwen3", e.Message);
    }

    [Fact]
    public void A_Llama_3_instruct_config_loads_with_its_list_of_eos_ids_and_writes_it_back()
    {
        var path = Patched("llama-rope-llama3", """{"eos_token_id": [2, 5, 7], "bos_token_id": 1, "transformers_version": "4.45.0", "_name_or_path": "x"}""");
        var config = LlamaConfig.FromFile(path);
        Assert.Equal(RopeKind.Llama3, config.RopeScaling!.Kind);
        using var model = new LlamaForCausalLM(config);
        var written = JsonNode.Parse(MergedExport.ConfigJsonFor(model, TorchSharp.torch.ScalarType.Float32))!.AsObject();
        Assert.Equal("[2,5,7]", written["eos_token_id"]!.ToJsonString());
        Assert.Equal("llama3", written["rope_scaling"]!["rope_type"]!.GetValue<string>());
        Assert.False(written["rope_scaling"]!.AsObject().ContainsKey("beta_fast"), "unset rope keys are not written (transformers reads null differently)");
        Assert.False(written.ContainsKey("transformers_version"));
    }

    [Fact]
    public void Absent_fields_take_the_familys_transformers_defaults()
    {
        // MistralConfig defaults sliding_window to 4096 (an explicit null means none); Qwen3Config head_dim to 128.
        Assert.Equal(4096, LlamaConfig.FromFile(Patched("mistral", "{}", "sliding_window")).AttentionWindow);
        Assert.Null(LlamaConfig.FromFile(Patched("mistral", """{"sliding_window": null}""")).AttentionWindow);
        Assert.Equal(128, LlamaConfig.FromFile(Patched("qwen3", "{}", "head_dim")).HeadSize);
        Assert.True(LlamaConfig.FromFile(Patched("gemma", "{}", "tie_word_embeddings")).TieWordEmbeddings);
        // Qwen2's sliding_window counts only under use_sliding_window.
        Assert.Null(LlamaConfig.FromFile(Patched("qwen2", "{}")).AttentionWindow);
    }
}
