using System.Text.Json.Nodes;

namespace ChainLora.Tests.Cli;

/// <summary>`chainlora train --task sft` and `eval --task sft` on stories260K (no chat template: ChatML renders) and a small chat JSONL.</summary>
public sealed class SftCliTests : IDisposable
{
    readonly DirectoryInfo temp = Directory.CreateTempSubdirectory("chainlora-sftcli-");

    public void Dispose() => temp.Delete(recursive: true);

    static string Model => SharedData.Require("models/stories260K");

    static readonly string[] Animals = ["cat", "dog", "bird", "fish", "frog", "duck", "bear", "fox"];

    /// <summary>A folder whose validation file repeats the train file: the test sample is the training data.</summary>
    string ChatFolder()
    {
        var dir = Directory.CreateDirectory(Path.Combine(temp.FullName, "chat")).FullName;
        var lines = Animals.Select(a =>
            $$"""{"messages": [{"role": "user", "content": "What did the {{a}} do?"}, {"role": "assistant", "content": "The {{a}} ran to the park and played."}]}""");
        File.WriteAllLines(Path.Combine(dir, "train.jsonl"), lines);
        File.WriteAllLines(Path.Combine(dir, "validation.jsonl"), lines);
        return dir;
    }

    static JsonNode LastJsonLine(string output) => JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;

    [Fact]
    public void Training_lowers_the_response_loss_on_the_trained_conversations()
    {
        var data = ChatFolder();
        var (exit, output, error) = CliHarness.Run("eval", "--model", Model, "--task", "sft", "--data", data, "--num-eval", "8", "--json");
        Assert.True(exit == 0, error);
        var before = (double)LastJsonLine(output)["test"]!["response_nll"]!;

        var outDir = Path.Combine(temp.FullName, "run");
        (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "sft", "--data", data, "--out", outDir, "--json",
            "--method", "lora", "--num-train", "8", "--num-dev", "0", "--num-eval", "8", "--epochs", "4", "--batch-size", "4", "--lr", "1e-2");
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        var after = (double)result["test"]!["response_nll"]!;
        Assert.Equal(Math.Exp(after), (double)result["test"]!["perplexity"]!, 6);
        Assert.True(after < before - 0.1, $"response NLL {before} untrained, {after} after training");
        Assert.Equal("sft", (string)result["task"]!);
        Assert.False((bool)result["hyperparameters"]!["train_on_inputs"]!);
        Assert.Equal(0, (int)result["data"]!["truncation"]!["cut_examples"]!);
        Assert.Equal(8, (int)result["data"]!["train"]!);
    }

    [Fact]
    public void Truncation_is_reported_and_train_on_inputs_recorded()
    {
        var outDir = Path.Combine(temp.FullName, "cut");
        var (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "sft", "--data", ChatFolder(), "--out", outDir, "--json",
            "--method", "lora", "--num-train", "2", "--num-dev", "0", "--num-eval", "2", "--epochs", "1", "--batch-size", "2",
            "--context", "12", "--train-on-inputs");
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        var truncation = result["data"]!["truncation"]!;
        Assert.Equal(12, (int)truncation["max_tokens"]!);
        Assert.Equal(4, (int)truncation["cut_examples"]!); // every drawn example (2 train, 2 test) is longer than 12 tokens
        Assert.True((int)truncation["cut_tokens"]! > 4 * 10, truncation.ToJsonString());
        Assert.True((bool)result["hyperparameters"]!["train_on_inputs"]!);
        Assert.Contains($"note: 4 examples were longer than 12 tokens: {(int)truncation["cut_tokens"]!} tokens cut from their ends", error);
    }

    [Fact]
    public void Train_on_inputs_and_max_tokens_are_part_of_the_run_fingerprint_a_resume_checks()
    {
        var file = Path.Combine(ChatFolder(), "train.jsonl");
        var summary = new ChainLora.Tasks.DataSummary(file, [file], [], 8, 0, true, new(), 4, 0, 2, null);
        var options = new ChainLora.Recipes.TrainRecipeOptions { Task = "sft", Data = file };
        var plain = ChainLora.Recipes.RunFingerprint.Of(options, Model, summary);
        var inputs = ChainLora.Recipes.RunFingerprint.Of(options with { TrainOnInputs = true }, Model, summary);
        var shorter = ChainLora.Recipes.RunFingerprint.Of(options with { Context = 64 }, Model, summary);
        Assert.False(plain.ContainsKey("train_on_inputs"));
        Assert.Equal("true", inputs["train_on_inputs"]);
        Assert.Equal("64", shorter["context"]);
    }

    [Fact]
    public void Bad_data_exits_2_naming_the_file_line_and_field()
    {
        var data = Path.Combine(temp.FullName, "bad.jsonl");
        File.WriteAllLines(data, [
            """{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}""",
            """{"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "x"}]}""",
        ]);
        var (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "sft", "--data", data, "--out", Path.Combine(temp.FullName, "bad"));
        Assert.Equal(2, exit);
        Assert.Equal($"error: {data}:2: field 'messages[1].role': 'robot' is not a role here (expected system, user, assistant)", error.Trim());
    }
}
