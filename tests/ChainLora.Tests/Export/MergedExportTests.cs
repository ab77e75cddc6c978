using System.Text.Json;
using ChainLora.Export;
using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Export;

public class MergedExportTests : TempFolderTest
{
    /// <summary>A tiny OPT with a trained-looking chain (bias lora_only) and its logits.</summary>
    static (OptForCausalLM Model, Tensor Logits) TrainedOpt()
    {
        var model = TinyModels.Opt();
        ExportKit.ThreeLinkChain(model, new LoraConfig { Rank = 8, Alpha = 16, Bias = LoraBias.LoraOnly });
        ExportKit.PerturbBiases(model, 3);
        return (model, ExportKit.Logits(model));
    }

    [Fact]
    public void A_merged_OPT_export_loads_with_our_loader_and_gives_the_same_logits()
    {
        var (model, expected) = TrainedOpt();
        using var _ = model;
        var tokenizer = PathIn("tok");
        ExportKit.WriteTinyBpe(tokenizer);
        File.WriteAllText(Path.Combine(tokenizer, "chat_template.jinja"), "{{ messages[0].content }}");
        var dir = PathIn("merged");
        MergedExport.Save(model, dir, tokenizer, cancel: TestContext.Current.CancellationToken);

        Assert.Equal(["chat_template.jinja", "config.json", "merges.txt", "model.safetensors", "vocab.json"],
            Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("hi", ChainLora.Tokenization.ChatTemplate.FromDirectory(dir).Render([new("user", "hi")], false)); // the template travels
        var keys = SafeTensors.ReadHeader(Path.Combine(dir, "model.safetensors")).Tensors.Keys.ToList();
        Assert.DoesNotContain(keys, k => k.Contains("lora") || k == "lm_head.weight");
        Assert.Equal(model.named_parameters().Count(p => !p.name.Contains(".lora.")), keys.Count);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json"))).RootElement;
        Assert.Equal("opt", config.GetProperty("model_type").GetString());
        Assert.Equal("OPTForCausalLM", config.GetProperty("architectures")[0].GetString());
        Assert.Equal("float32", config.GetProperty("torch_dtype").GetString());
        Assert.True(config.GetProperty("tie_word_embeddings").GetBoolean());
        Assert.False(config.TryGetProperty("head_dim", out var _), "derived properties are not config fields");

        using var loaded = PretrainedModel.Load(dir);
        // stories260K's logits reach ~20, where one fp32 ulp is 2e-6: merging reorders the sums.
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(loaded.Model), expected);
        Assert.True(diff < 1e-4, $"max |Δ| = {diff:E2}");
        Assert.Equal(2, loaded.Tokenizer.EosId);
        // The live model is left as it was: still adapted, same function.
        Assert.True(Fixtures.MaxAbsDiff(ExportKit.Logits(model), expected) == 0);
    }

    [Fact]
    public void A_tiny_shard_limit_writes_an_index_and_shards_that_still_load()
    {
        var (model, expected) = TrainedOpt();
        using var _ = model;
        var tokenizer = PathIn("tok");
        ExportKit.WriteTinyBpe(tokenizer);
        var dir = PathIn("sharded");
        MergedExport.Save(model, dir, tokenizer, new MergedExportOptions { MaxShardBytes = ChainLora.IO.ByteSize.Parse("20KB") }, cancel: TestContext.Current.CancellationToken);

        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
        Assert.False(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.True(Directory.GetFiles(dir, "model-*-of-*.safetensors").Length > 2);
        using var loaded = PretrainedModel.Load(dir);
        // stories260K's logits reach ~20, where one fp32 ulp is 2e-6: merging reorders the sums.
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(loaded.Model), expected);
        Assert.True(diff < 1e-4, $"max |Δ| = {diff:E2}");
    }

    [Fact]
    public void A_bf16_export_stores_bf16_and_says_so()
    {
        var (model, expected) = TrainedOpt();
        using var _ = model;
        var tokenizer = PathIn("tok");
        ExportKit.WriteTinyBpe(tokenizer);
        var dir = PathIn("bf16");
        MergedExport.Save(model, dir, tokenizer, new MergedExportOptions { DType = ScalarType.BFloat16 }, cancel: TestContext.Current.CancellationToken);

        Assert.All(SafeTensors.ReadHeader(Path.Combine(dir, "model.safetensors")).Tensors.Values, t => Assert.Equal("BF16", t.DType));
        Assert.Equal("bfloat16", JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json"))).RootElement.GetProperty("torch_dtype").GetString());
        using var loaded = PretrainedModel.Load(dir);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(loaded.Model), expected);
        var scale = expected.abs().max().item<float>();
        Assert.True(diff < 0.05 * scale, $"bf16 rounding only: max |Δ| = {diff:E2} on logits up to {scale:F2}");
    }

    [Fact]
    public void A_llama2c_model_exports_with_its_SentencePiece_model_as_tokenizer_model()
    {
        var source = SharedData.Require("models/stories260K");
        using var pretrained = PretrainedModel.Load(source);
        var adapters = LoraAdapters.Inject(pretrained.Model, new LoraConfig { Rank = 4, Alpha = 8 });
        ExportKit.RandomizeB(adapters, 8);
        var expected = ExportKit.Logits(pretrained.Model);
        var dir = PathIn("stories");
        MergedExport.Save(pretrained.Model, dir, source, cancel: TestContext.Current.CancellationToken);

        Assert.True(File.Exists(Path.Combine(dir, "tokenizer.model")));
        Assert.False(File.Exists(Path.Combine(dir, "tok512.bin")));
        using var loaded = PretrainedModel.Load(dir);
        Assert.Equal(CheckpointFormat.HuggingFace, loaded.Format);
        Assert.Equal(pretrained.Tokenizer.Encode("Once upon a time", addBos: true), loaded.Tokenizer.Encode("Once upon a time", addBos: true));
        // stories260K's logits reach ~20, where one fp32 ulp is 2e-6: merging reorders the sums.
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(loaded.Model), expected);
        Assert.True(diff < 1e-4, $"max |Δ| = {diff:E2}");
    }

    [Fact]
    public void An_unrelated_non_empty_folder_is_not_clobbered_but_an_earlier_export_is_replaced()
    {
        var (model, _) = TrainedOpt();
        using var __ = model;
        var tokenizer = PathIn("tok");
        ExportKit.WriteTinyBpe(tokenizer);
        var dir = PathIn("out");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine");

        var e = Assert.Throws<ArgumentException>(() => MergedExport.Save(model, dir, tokenizer, cancel: TestContext.Current.CancellationToken));
        Assert.Contains("notes.txt", e.Message);
        Assert.Contains("--force", e.Message);
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));

        MergedExport.Save(model, dir, tokenizer, new MergedExportOptions { Overwrite = true }, cancel: TestContext.Current.CancellationToken);
        Assert.False(File.Exists(Path.Combine(dir, "notes.txt")));
        // An earlier export is replaced without --force, shards and all.
        MergedExport.Save(model, dir, tokenizer, new MergedExportOptions { MaxShardBytes = 20_000 }, cancel: TestContext.Current.CancellationToken);
        MergedExport.Save(model, dir, tokenizer, cancel: TestContext.Current.CancellationToken);
        Assert.Empty(Directory.GetFiles(dir, "model-*"));
        Assert.Equal(["out", "tok"], Temp.GetDirectories().Select(d => d.Name).Order()); // no temp folders left behind
    }

    [Fact]
    public void A_failed_export_leaves_no_output_and_no_temp_folder()
    {
        var dir = PathIn("out");
        Assert.Throws<InvalidOperationException>(() => ExportDirectory.Write(dir, false, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "config.json"), "{}");
            throw new InvalidOperationException("disk full");
        }));
        Assert.Empty(Temp.GetFileSystemInfos());
    }

    [Fact]
    public void A_source_without_tokenizer_files_is_refused_before_anything_is_written()
    {
        var (model, _) = TrainedOpt();
        using var __ = model;
        Directory.CreateDirectory(PathIn("empty"));
        Assert.Throws<FileNotFoundException>(() => MergedExport.Save(model, PathIn("out"), PathIn("empty"), cancel: TestContext.Current.CancellationToken));
        Assert.False(Directory.Exists(PathIn("out")));
    }
}
