using System.Text.Json.Nodes;
using ChainLora.Lora;
using ChainLora.Tests.Export;

namespace ChainLora.Tests.Cli;

/// <summary>
/// Each Llama-derived family end to end on its tiny reference checkpoint: `train` with LoRA (the
/// family's default targets) and with COLA on all-linear, `export` as PEFT and merged, then
/// `perplexity` on the merged model and `generate` with the KV cache.
/// </summary>
public sealed class FamilyCliTests : TempFolderTest
{
    const string Text = "once upon a time there was a tiny model. it read a story and then another story. the end.";

    string TextFile()
    {
        var path = PathIn("text.txt");
        File.WriteAllText(path, string.Concat(Enumerable.Repeat(Text + " ", 6)));
        return path;
    }

    JsonNode Train(string model, string outDir, params string[] extra)
    {
        var (exit, _, error) = CliHarness.Run(["train", "--model", model, "--task", "lm", "--data", TextFile(), "--out", outDir,
            "--context", "24", "--num-train", "4", "--num-dev", "1", "--num-eval", "2", "--epochs", "2", "--batch-size", "2", "--lr", "1e-2", .. extra]);
        Assert.True(exit == 0, error);
        return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
    }

    static double[] Losses(JsonNode result) =>
        [.. result["training"]!["links"]!.AsArray().SelectMany(l => l!["losses"]!.AsArray().Select(x => x!.GetValue<double>()))];

    [Theory, MemberData(nameof(FamilyModels.Names), MemberType = typeof(FamilyModels))]
    public void Lora_and_cola_train_export_and_the_exports_score_and_generate(string fixture)
    {
        var model = FamilyModels.Folder(fixture, PathIn("model"));
        var modelType = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!["model_type"]!.GetValue<string>();

        var lora = Train(model, PathIn("lora"));
        Assert.Equal(LoraConfig.DefaultTargetsFor(modelType), lora["hyperparameters"]!["targets"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.All(Losses(lora), l => Assert.True(double.IsFinite(l)));

        var cola = Train(model, PathIn("cola"), "--method", "cola", "--chain-length", "2", "--targets", LoraConfig.AllLinear);
        Assert.Equal(2, cola["training"]!["links"]!.AsArray().Count);
        var losses = Losses(cola);
        Assert.All(losses, l => Assert.True(double.IsFinite(l)));
        Assert.True(losses[^1] < losses[0], $"{fixture}: COLA loss {losses[0]:F3} -> {losses[^1]:F3} did not fall");

        var (exit, _, error) = CliHarness.Run("export", "--run", PathIn("cola"), "--format", "peft", "--out", PathIn("peft"));
        Assert.True(exit == 0, error);
        var adapter = JsonNode.Parse(File.ReadAllText(Path.Combine(PathIn("peft"), "adapter_config.json")))!;
        Assert.Equal(FamilyModels.LinearNames(modelType), adapter["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));

        (exit, _, error) = CliHarness.Run("export", "--run", PathIn("cola"), "--format", "merged", "--out", PathIn("merged"));
        Assert.True(exit == 0, error);
        Assert.Equal(modelType, JsonNode.Parse(File.ReadAllText(Path.Combine(PathIn("merged"), "config.json")))!["model_type"]!.GetValue<string>());

        (exit, var output, error) = CliHarness.Run("perplexity", "--model", PathIn("merged"), "--text", TextFile(), "--context", "24");
        Assert.True(exit == 0, error);
        Assert.Contains("perplexity", output, StringComparison.OrdinalIgnoreCase);
        (exit, _, error) = CliHarness.Run("generate", "--model", PathIn("merged"), "--prompt", "once upon", "--max-new-tokens", "5");
        Assert.True(exit == 0, error);
    }
}
