using ChainLora.Export;
using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Models;
using ChainLora.Tests.Export;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>
/// Every key layout the Hub publishes loads to the reference logits (scripts/make_reference_fixtures.py):
/// OPT with and without the base-model prefix and with or without a tied lm_head.weight; Llama
/// with lm_head.weight absent when tied. Anything else is still named.
/// </summary>
public class CheckpointLayoutTests : TempFolderTest
{
    /// <summary>A model folder holding the fixture's weights renamed by <paramref name="rename"/> (null drops a key).</summary>
    string Variant(string fixture, Func<string, string?> rename, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>>? edit = null)
    {
        var source = Fixtures.Reference(fixture);
        var dir = PathIn($"{fixture}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(dir, "config.json"));
        ExportKit.WriteTinyBpe(dir);
        var tensors = SafeTensors.Load(Path.Combine(source, "model.safetensors"))
            .Select(kv => (Name: rename(kv.Key), kv.Value)).Where(kv => kv.Name is not null)
            .ToDictionary(kv => kv.Name!, kv => kv.Value);
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), edit?.Invoke(tensors) ?? tensors);
        return dir;
    }

    static void AssertReferenceLogits(string fixture, string dir)
    {
        using var loaded = PretrainedModel.Load(dir);
        var r = Fixtures.Json(Path.Combine(Fixtures.Reference(fixture), "logits.json"));
        using var _ = no_grad();
        var diff = Fixtures.MaxAbsDiff(loaded.Model.Forward(Fixtures.Ints(r.GetProperty("input_ids"))), Fixtures.Floats3(r.GetProperty("logits")));
        Assert.True(diff < 1e-4, $"{fixture} from {dir}: max |Δlogit| = {diff:E2}");
    }

    static string WithoutPrefix(string key) =>
        key.StartsWith(CheckpointLayout.BasePrefix, StringComparison.Ordinal) ? key[CheckpointLayout.BasePrefix.Length..] : key;

    [Theory]
    [InlineData("opt-preln")]
    [InlineData("opt-postln")]
    [InlineData("opt-preln-projected")]
    public void OPT_loads_in_the_facebook_layout_without_the_model_prefix(string fixture)
    {
        var dir = Variant(fixture, WithoutPrefix);
        Assert.Contains("decoder.layers.0.self_attn.q_proj.weight", SafeTensors.ReadHeader(Path.Combine(dir, "model.safetensors")).Tensors.Keys);
        AssertReferenceLogits(fixture, dir);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OPT_loads_with_and_without_a_tied_lm_head(bool withPrefix)
    {
        var dir = Variant("opt-preln", k => withPrefix ? k : WithoutPrefix(k), t =>
        {
            t["lm_head.weight"] = t[withPrefix ? "model.decoder.embed_tokens.weight" : "decoder.embed_tokens.weight"].clone();
            return t;
        });
        AssertReferenceLogits("opt-preln", dir);
        AssertReferenceLogits("opt-preln", Variant("opt-preln", k => k == "lm_head.weight" ? null : k));
    }

    [Fact]
    public void Tied_Llama_loads_with_lm_head_absent_or_present()
    {
        var absent = Variant("llama-tied", k => k == "lm_head.weight" ? null : k);
        Assert.DoesNotContain("lm_head.weight", SafeTensors.ReadHeader(Path.Combine(absent, "model.safetensors")).Tensors.Keys);
        AssertReferenceLogits("llama-tied", absent);
        AssertReferenceLogits("llama-tied", Variant("llama-tied", k => k, t =>
        {
            t["lm_head.weight"] = t["model.embed_tokens.weight"].clone();
            return t;
        }));
    }

    [Fact]
    public void A_Llama_base_model_checkpoint_loads_without_the_prefix() =>
        AssertReferenceLogits("llama-gqa", Variant("llama-gqa", WithoutPrefix));

    [Fact]
    public void An_untied_Llama_without_lm_head_is_refused_naming_it()
    {
        var dir = Variant("llama-gqa", k => k == "lm_head.weight" ? null : k);
        var e = Assert.Throws<InvalidDataException>(() => PretrainedModel.Load(dir));
        Assert.Contains("Missing: lm_head.weight", e.Message);
        Assert.Contains(dir, e.Message);
    }

    [Fact]
    public void Unexpected_and_wrong_shape_keys_are_named_with_their_stored_names()
    {
        var unexpected = Variant("opt-preln", k => k == "model.decoder.layers.1.fc2.bias" ? "decoder.layers.1.fc9.bias" : WithoutPrefix(k));
        var e = Assert.Throws<InvalidDataException>(() => PretrainedModel.Load(unexpected));
        Assert.Contains("Missing: model.decoder.layers.1.fc2.bias", e.Message);
        Assert.Contains("Unexpected: decoder.layers.1.fc9.bias", e.Message);

        var shape = Variant("opt-preln", WithoutPrefix, t =>
        {
            t["decoder.final_layer_norm.weight"] = ones(3);
            return t;
        });
        e = Assert.Throws<InvalidDataException>(() => PretrainedModel.Load(shape));
        Assert.Contains("'decoder.final_layer_norm.weight' has shape [3]", e.Message);
        Assert.Contains("'model.decoder.final_layer_norm.weight'", e.Message);
    }

    [Fact]
    public void The_same_parameter_under_both_layouts_is_refused()
    {
        var dir = Variant("opt-preln", k => k, t =>
        {
            t["decoder.final_layer_norm.bias"] = t["model.decoder.final_layer_norm.bias"].clone();
            return t;
        });
        var e = Assert.Throws<InvalidDataException>(() => PretrainedModel.Load(dir));
        Assert.Contains("both name parameter 'model.decoder.final_layer_norm.bias'", e.Message);
    }

    [Theory]
    [InlineData("opt-preln")]
    [InlineData("llama-tied")]
    [InlineData("llama-gqa")]
    public void Merged_export_writes_the_keys_transformers_writes(string fixture)
    {
        var source = Fixtures.Reference(fixture);
        var stored = SafeTensors.ReadHeader(Path.Combine(source, "model.safetensors")).Tensors.Keys.ToHashSet();
        using var loaded = PretrainedModel.Load(Variant(fixture, k => k));
        var dir = PathIn("export-" + fixture);
        MergedExport.Save(loaded.Model, dir, loaded.Directory, cancel: TestContext.Current.CancellationToken);
        var written = SafeTensors.ReadHeader(Path.Combine(dir, "model.safetensors"));
        // save_pretrained of *ForCausalLM: every key under "model.", lm_head.weight only when untied,
        // and the "format": "pt" metadata transformers checks on load.
        Assert.All(written.Tensors.Keys, k => Assert.True(k.StartsWith("model.") || k == "lm_head.weight", k));
        Assert.Equal(fixture == "llama-gqa", written.Tensors.ContainsKey("lm_head.weight"));
        Assert.Equal(stored.Where(k => k != "lm_head.weight" || fixture == "llama-gqa").Order(), written.Tensors.Keys.Order());
        Assert.Equal("pt", written.Metadata["format"]);
    }

    [Fact]
    public void Weights_holding_nan_are_refused_naming_the_tensor()
    {
        var dir = Variant("opt-preln", k => k, t =>
        {
            var name = t.Keys.First(k => k.EndsWith("fc1.weight", StringComparison.Ordinal));
            var poisoned = t[name].clone();
            poisoned[0, 0] = float.NaN;
            t[name] = poisoned;
            return t;
        });
        var e = Assert.Throws<InvalidDataException>(() => PretrainedModel.Load(dir));
        Assert.Contains("fc1.weight' holds NaN or infinite values", e.Message);
    }

    [Fact]
    public void A_tokenizer_with_more_ids_than_the_embedding_is_refused()
    {
        var dir = Variant("opt-preln", k => k);
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        var vocab = Enumerable.Range(0, (int)config["vocab_size"]! + 5).ToDictionary(i => i < 7 ? new[] { "<s>", "<pad>", "</s>", "<unk>", "a", "b", "ab" }[i] : $"t{i}", i => i);
        File.WriteAllText(Path.Combine(dir, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(vocab));
        var e = Assert.Throws<InvalidDataException>(() => PretrainedModel.Load(dir));
        Assert.True(e.Message.Contains($"the tokenizer has {(int)config["vocab_size"]! + 5} tokens but config.json's vocab_size is {(int)config["vocab_size"]!}"), e.Message);
    }

    [Theory]
    [InlineData("num_hidden_layers", 2000000000, "num_hidden_layers = 2000000000 but")]
    [InlineData("vocab_size", 1000000000, "vocab_size 1000000000 and width")]
    [InlineData("hidden_size", 1 << 30, "do not match")]
    public void Config_sizes_are_checked_against_the_weight_files_before_anything_is_allocated(string field, int value, string expected)
    {
        var dir = Variant("llama-gqa", k => k);
        var path = Path.Combine(dir, "config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        config[field] = value;
        File.WriteAllText(path, config.ToJsonString());
        var before = ChainLora.Runtime.ProcessMemory.CurrentRssMb();
        var e = Assert.ThrowsAny<Exception>(() => PretrainedModel.Load(dir));
        Assert.True(e is InvalidDataException, $"{e.GetType().Name}: {e.Message}");
        Assert.Contains(expected, e.Message);
        Assert.True(ChainLora.Runtime.ProcessMemory.CurrentRssMb() - before < 200, "the refusal allocated the model first");
    }
}
