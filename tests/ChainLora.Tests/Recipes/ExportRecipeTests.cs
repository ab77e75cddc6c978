using System.Text.Json;
using ChainLora.Chain;
using ChainLora.Export;
using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Lora;
using ChainLora.Tests.Export;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Recipes;

public class ExportRecipeTests : TempFolderTest
{
    static readonly TrainerOptions Cola = new() { Method = TrainingMethod.Cola, LearningRate = 5e-3, Epochs = 3, Seed = 11 };

    /// <summary>A pretrained folder on disk: a tiny random OPT with a tiny tokenizer.</summary>
    string WriteBaseModel()
    {
        var tokenizer = PathIn("tok");
        ExportKit.WriteTinyBpe(tokenizer);
        using var model = TinyModels.Opt(seed: 21);
        var dir = PathIn("base");
        MergedExport.Save(model, dir, tokenizer);
        return dir;
    }

    /// <summary>
    /// Trains a 3-link COLA chain (ranks 8, 4, 4, biases of the adapted layers) on the model of
    /// <paramref name="baseDir"/> and saves it, as `chainlora train --out` does. Dispose the model.
    /// </summary>
    (string RunDir, Tensor Logits, ChainTrainer Trainer, PretrainedModel Model) TrainRun(string baseDir, PeftAdapter? initial = null)
    {
        var pretrained = PretrainedModel.Load(baseDir);
        initial?.MergeInto(pretrained.Model);
        var trainer = new ChainTrainer(pretrained.Model, Cola, new LoraConfig { Bias = LoraBias.LoraOnly }, new ChainConfig { Length = 3, Ranks = [8, 4] });
        trainer.Train(new RandomLmData(4));
        var runDir = PathIn("run");
        RunArtifacts.SaveChain(runDir, trainer.Adapters!, baseDir, initial);
        return (runDir, ExportKit.Logits(pretrained.Model), trainer, pretrained);
    }

    [Fact]
    public void A_saved_chain_reads_back_link_by_link()
    {
        var baseDir = WriteBaseModel();
        var (runDir, _, trainer, model) = TrainRun(baseDir);
        using var _ = model;
        using var chain = RunArtifacts.LoadChain(runDir);

        Assert.Equal(Path.GetFullPath(baseDir), chain.BaseModel);
        Assert.Equal("opt", chain.ModelType);
        Assert.Equal(LoraBias.LoraOnly, chain.Lora.Bias);
        Assert.Equal([8, 4, 4], chain.Links.Select(l => l.Rank));
        Assert.Equal([16.0, 16.0, 16.0], chain.Links.Select(l => l.Alpha));
        Assert.All(chain.Links, l => Assert.Equal("trained", l.Origin));
        foreach (var (module, layer) in trainer.Adapters!.Layers)
        {
            for (var i = 0; i < 2; i++)
                Assert.True(Fixtures.MaxAbsDiff(chain.Factors[i][module].Delta(), layer.TiedLinks[i].Delta()) == 0, $"{module} link {i}");
            Assert.True(Fixtures.MaxAbsDiff(chain.Factors[2][module].Delta(), layer.DeltaWeight()) == 0, $"{module} current link");
        }
        Assert.Equal(4, chain.Biases.Count); // q_proj and v_proj biases of 2 layers
    }

    [Fact]
    public void Export_peft_of_a_trained_run_reproduces_it_on_the_pretrained_model()
    {
        var baseDir = WriteBaseModel();
        var (runDir, trained, _, model) = TrainRun(baseDir);
        model.Dispose();
        var outDir = PathIn("peft");
        var (exit, output, error) = CliHarness.Run("export", "--run", runDir, "--format", "peft", "--out", outDir);
        Assert.True(exit == 0, error);
        Assert.Contains(outDir, output);

        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "adapter_config.json"))).RootElement;
        Assert.Equal((16, 16), (config.GetProperty("r").GetInt32(), config.GetProperty("lora_alpha").GetInt32()));
        Assert.Equal(Path.GetFullPath(baseDir), config.GetProperty("base_model_name_or_path").GetString());
        using var pretrained = PretrainedModel.Load(baseDir);
        using var adapter = PeftAdapter.Load(outDir);
        adapter.MergeInto(pretrained.Model);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(pretrained.Model), trained);
        Assert.True(diff < 1e-5, $"max |Δ| = {diff:E2}");
    }

    [Fact]
    public void An_rslora_link_exports_as_peft_use_rslora_with_its_own_alpha_and_reproduces_the_run()
    {
        var baseDir = WriteBaseModel();
        using var pretrained = PretrainedModel.Load(baseDir);
        var lora = new LoraConfig { Rank = 4, Alpha = 8, UseRsLora = true };
        var trainer = new ChainTrainer(pretrained.Model, Cola with { Method = TrainingMethod.Lora }, lora, new ChainConfig());
        trainer.Train(new RandomLmData(4));
        Assert.Equal(8 / 2.0, trainer.Adapters!.Layers.Values.First().Scaling);   // alpha / sqrt(r), not alpha / r = 2
        var trained = ExportKit.Logits(pretrained.Model);
        var runDir = PathIn("run");
        RunArtifacts.SaveChain(runDir, trainer.Adapters, baseDir, null);
        var outDir = PathIn("peft");
        var (exit, _, error) = CliHarness.Run("export", "--run", runDir, "--format", "peft", "--out", outDir);
        Assert.True(exit == 0, error);
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "adapter_config.json"))).RootElement;
        Assert.Equal((4, 8.0, true), (config.GetProperty("r").GetInt32(), config.GetProperty("lora_alpha").GetDouble(), config.GetProperty("use_rslora").GetBoolean()));
        using var fresh = PretrainedModel.Load(baseDir);
        using var adapter = PeftAdapter.Load(outDir);
        adapter.MergeInto(fresh.Model);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(fresh.Model), trained);
        Assert.True(diff < 1e-5, $"max |Δ| = {diff:E2}");
    }

    [Fact]
    public void Export_merged_of_a_trained_run_loads_as_a_model_with_the_trained_logits()
    {
        var baseDir = WriteBaseModel();
        var (runDir, trained, _, model) = TrainRun(baseDir);
        model.Dispose();
        var outDir = PathIn("merged");
        var (exit, _, error) = CliHarness.Run("export", "--run", runDir, "--format", "merged", "--out", outDir, "--max-shard-size", "20KB", "--device", "cpu");
        Assert.True(exit == 0, error);
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors.index.json")));
        using var loaded = PretrainedModel.Load(outDir);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(loaded.Model), trained);
        Assert.True(diff < 1e-5, $"max |Δ| = {diff:E2}");
    }

    [Fact]
    public void A_run_that_started_from_an_adapter_exports_relative_to_the_pretrained_weights()
    {
        var baseDir = WriteBaseModel();
        // An adapter on q_proj and k_proj at rank 2: other modules and rank than the chain's.
        var initialDir = PathIn("initial");
        using (var other = PretrainedModel.Load(baseDir))
        {
            var lora = LoraAdapters.Inject(other.Model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "k_proj"] });
            ExportKit.RandomizeB(lora, 31);
            using var made = PeftAdapter.FromChain(lora);
            made.Save(initialDir);
        }
        using var initial = PeftAdapter.Load(initialDir);
        var (runDir, trained, _, model) = TrainRun(baseDir, initial);
        model.Dispose();
        using (var chain = RunArtifacts.LoadChain(runDir))
            Assert.Equal(["adapter", "trained", "trained", "trained"], chain.Links.Select(l => l.Origin));

        var outDir = PathIn("peft");
        var (exit, _, error) = CliHarness.Run("export", "--run", runDir, "--format", "peft", "--out", outDir);
        Assert.True(exit == 0, error);
        using var pretrained = PretrainedModel.Load(baseDir);
        using var adapter = PeftAdapter.Load(outDir);
        Assert.Equal(18, adapter.Modules["model.decoder.layers.0.self_attn.q_proj"].Rank);   // 2 + 8 + 4 + 4
        Assert.Equal(2, adapter.Modules["model.decoder.layers.0.self_attn.k_proj"].Rank);
        Assert.Equal(16, adapter.Modules["model.decoder.layers.0.self_attn.v_proj"].Rank);
        adapter.MergeInto(pretrained.Model);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(pretrained.Model), trained);
        Assert.True(diff < 1e-5, $"max |Δ| = {diff:E2}");
    }

    [Fact]
    public void Export_refuses_a_run_without_a_chain_and_an_unrelated_output_folder()
    {
        Directory.CreateDirectory(PathIn("empty-run"));
        var (exit, _, error) = CliHarness.Run("export", "--run", PathIn("empty-run"), "--format", "peft", "--out", PathIn("out"));
        Assert.Equal(2, exit);
        Assert.Contains("chain.json", error);

        var baseDir = WriteBaseModel();
        var (runDir, _, _, model) = TrainRun(baseDir);
        model.Dispose();
        var outDir = PathIn("mine");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "thesis.tex"), "precious");
        (exit, _, error) = CliHarness.Run("export", "--run", runDir, "--format", "merged", "--out", outDir);
        Assert.Equal(2, exit);
        Assert.Contains("thesis.tex", error);
        Assert.Equal("precious", File.ReadAllText(Path.Combine(outDir, "thesis.tex")));

        (exit, _, error) = CliHarness.Run("export", "--run", runDir, "--format", "onnx", "--out", outDir);
        Assert.Equal(2, exit);
    }

    [Fact]
    public void Export_refuses_a_chain_of_another_version_and_a_peft_adapter_holding_nan()
    {
        var baseDir = WriteBaseModel();
        var (runDir, _, _, model) = TrainRun(baseDir);
        model.Dispose();
        var chainJson = Path.Combine(runDir, RunArtifacts.FolderName, RunArtifacts.ChainJson);
        var original = File.ReadAllText(chainJson);
        File.WriteAllText(chainJson, original.Replace("\"version\": 1", "\"version\": 99"));
        var (exit, _, error) = CliHarness.Run("export", "--run", runDir, "--format", "peft", "--out", PathIn("v99"));
        Assert.Equal(2, exit);
        Assert.Contains("field 'version' = 99", error);
        Assert.False(Directory.Exists(PathIn("v99")));

        File.WriteAllText(chainJson, original);
        var links = Path.Combine(runDir, RunArtifacts.FolderName, RunArtifacts.LinksFile);
        var tensors = SafeTensors.Load(links);
        var key = tensors.Keys.First(k => k.EndsWith(".B", StringComparison.Ordinal));
        tensors[key] = tensors[key].clone();
        tensors[key][0, 0] = float.NaN;
        SafeTensors.Save(links, tensors);
        (exit, _, error) = CliHarness.Run("export", "--run", runDir, "--format", "peft", "--out", PathIn("nan"));
        Assert.Equal(2, exit);
        Assert.Contains("NaN or infinite", error);
        Assert.False(Directory.Exists(PathIn("nan")));
    }
}
