using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Models;
using ChainLora.Tests.Export;
using static TorchSharp.torch;

namespace ChainLora.Tests.Loading;

/// <summary>
/// Model folders with PyTorch .bin weights (scripts/make_pytorch_fixtures.py: torch.save of a tiny
/// OPT in fp16 with a tied lm_head, and two shards with an index) load to exactly the tensors of
/// their hand-written expected.safetensors; safetensors wins when a folder holds both formats.
/// </summary>
public class CheckpointFilesTests : TempFolderTest
{
    static readonly OptConfig TinyOpt = new()
    {
        VocabSize = 16, HiddenSize = 8, FfnDim = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, MaxPositionEmbeddings = 16,
        WordEmbedProjDim = 8,
    };

    string Folder(string fixture, params string[] files)
    {
        var dir = PathIn(fixture + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), ConfigJson.Write(TinyOpt));
        ExportKit.WriteTinyBpe(dir);
        foreach (var f in files) File.Copy(Path.Combine(Fixtures.PyTorch(fixture), f), Path.Combine(dir, f));
        return dir;
    }

    static Dictionary<string, Tensor> Expected(string fixture) =>
        SafeTensors.Load(Path.Combine(Fixtures.PyTorch(fixture), "expected.safetensors"));

    static void AssertWeights(CausalLM model, IReadOnlyDictionary<string, Tensor> expected)
    {
        foreach (var (name, p) in model.named_parameters())
            Assert.True(p.equal(expected[name].to(p.dtype)).all().item<bool>(), $"{name} differs from expected.safetensors");
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void A_pytorch_model_bin_folder_loads_in_the_requested_dtype(ScalarType dtype)
    {
        var dir = Folder("opt-fp16", CheckpointFiles.PyTorchFile);
        using var loaded = PretrainedModel.Load(dir, dtype);
        Assert.Equal(dtype, loaded.Model.named_parameters().First(p => p.name.EndsWith("fc1.weight")).parameter.dtype);
        AssertWeights(loaded.Model, Expected("opt-fp16"));
    }

    [Fact]
    public void A_sharded_pytorch_folder_loads_through_its_index()
    {
        var dir = Folder("sharded", CheckpointFiles.PyTorchIndex, "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin");
        using var loaded = PretrainedModel.Load(dir);
        AssertWeights(loaded.Model, Expected("sharded"));
    }

    [Fact]
    public void A_shard_missing_from_the_folder_is_named()
    {
        var dir = Folder("sharded", CheckpointFiles.PyTorchIndex, "pytorch_model-00001-of-00002.bin");
        var e = Assert.Throws<FileNotFoundException>(() => PretrainedModel.Load(dir));
        Assert.Contains("pytorch_model-00002-of-00002.bin", e.Message);
        Assert.Contains(CheckpointFiles.PyTorchIndex, e.Message);
    }

    [Fact]
    public void Safetensors_is_preferred_when_a_folder_has_both()
    {
        var dir = Folder("opt-fp16", CheckpointFiles.PyTorchFile);
        var doubled = Expected("opt-fp16").Where(kv => kv.Key != "lm_head.weight").ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32) * 2);
        SafeTensors.Save(Path.Combine(dir, CheckpointFiles.SafeTensorsFile), doubled);
        using (var source = CheckpointFiles.Open(dir)) Assert.IsType<SafeTensorsSource>(source);
        using var loaded = PretrainedModel.Load(dir);
        AssertWeights(loaded.Model, doubled);
    }

    [Fact]
    public void A_folder_without_weights_names_what_was_looked_for()
    {
        var dir = Folder("opt-fp16");
        var e = Assert.Throws<FileNotFoundException>(() => PretrainedModel.Load(dir));
        Assert.Contains("model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json", e.Message);
    }
}
