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
        Assert.Equal("false", plain["train_on_inputs"]);
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

    [Fact]
    public void Pack_trains_on_shared_rows_records_it_and_notes_the_fill()
    {
        var outDir = Path.Combine(temp.FullName, "packed");
        var (exit, output, error) = CliHarness.Run("train", "--model", Model, "--task", "sft", "--data", ChatFolder(), "--out", outDir,
            "--method", "cola", "--chain-length", "2", "--num-train", "8", "--num-dev", "0", "--num-eval", "8", "--epochs", "2", "--batch-size", "2",
            "--context", "256", "--pack", "--lr", "1e-2");
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        Assert.True((bool)result["hyperparameters"]!["pack"]!);
        var packing = result["data"]!["packing"]!;
        Assert.Equal(8, (int)packing["examples"]!);
        Assert.Equal(256, (int)packing["capacity"]!);
        var rows = (int)packing["rows"]!;
        Assert.Equal(3, rows);          // 8 conversations of 72 to 74 tokens (ChatML, character-level pieces): 3 to a row of 256
        // 2 epochs of ceil(rows / 2) batches, not of 8 / 2.
        Assert.Equal(2 * ((rows + 1) / 2), (int)result["training"]!["steps"]!);
        Assert.Contains($"note: packed 8 train examples into {rows} rows of up to 256 positions", error);
        Assert.Contains("conversations rendered as ChatML", output);    // stories260K ships no chat template
    }

    [Fact]
    public void Sft_only_options_on_another_task_are_one_line_naming_the_option()
    {
        foreach (var (option, message) in new[]
        {
            ("--pack", "error: pack: only the sft task packs its examples; lm does not"),
            ("--train-on-inputs", "error: train on inputs: only the sft task masks its inputs; lm does not"),
        })
        {
            var (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "lm", "--data", SharedData.Require("corpus/tinyshakespeare.txt"),
                "--out", Path.Combine(temp.FullName, "lm"), option);
            Assert.Equal(2, exit);
            Assert.Equal(message, error.Trim());
        }
        var (code, _, stderr) = CliHarness.Run("train", "--model", Model, "--task", "lm", "--data", SharedData.Require("corpus/tinyshakespeare.txt"),
            "--out", Path.Combine(temp.FullName, "lm"), "--truncation", "drop");
        Assert.Equal(2, code);
        Assert.Equal("error: truncation drop: only the sft task truncates its examples; lm does not", stderr.Trim());
    }

    [Fact]
    public void Truncation_error_names_the_file_line_and_length_and_drop_leaves_the_long_examples_out()
    {
        var dir = Directory.CreateDirectory(Path.Combine(temp.FullName, "long")).FullName;
        var train = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(train, [
            """{"prompt": "A cat", "completion": " sat."}""",
            """{"prompt": "Once upon a time there was a little girl who liked to play in the park with her dog", "completion": " and they ran."}""",
            """{"prompt": "A dog", "completion": " ran."}""",
        ]);
        File.Copy(train, Path.Combine(dir, "validation.jsonl"));
        string[] common = ["train", "--model", Model, "--task", "sft", "--data", dir, "--num-train", "3", "--num-dev", "0", "--num-eval", "3",
            "--epochs", "1", "--context", "12"];

        var errorOut = Path.Combine(temp.FullName, "long-error");
        var (exit, _, error) = CliHarness.Run([.. common, "--out", errorOut, "--truncation", "error"]);
        Assert.Equal(2, exit);
        Assert.Matches($@"^error: {System.Text.RegularExpressions.Regex.Escape(train)}:2: \d+ tokens, longer than the 12 an example may hold \(--context\); " +
            @"raise --context, or pass --truncation cut or drop$", error.Trim());
        Assert.False(File.Exists(Path.Combine(errorOut, "result.json")));

        var dropOut = Path.Combine(temp.FullName, "long-drop");
        (exit, _, error) = CliHarness.Run([.. common, "--out", dropOut, "--truncation", "drop", "--json"]);
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(dropOut, "result.json")))!;
        var truncation = result["data"]!["truncation"]!;
        Assert.Equal("drop", (string)truncation["mode"]!);
        Assert.Equal(2, (int)truncation["cut_examples"]!);       // the long one, drawn into train and into test
        Assert.Equal(2, (int)truncation["dropped"]!);
        Assert.Equal(2, (int)result["data"]!["train"]!);
        Assert.Equal(2, (int)result["data"]!["test"]!);
        Assert.Contains("note: 2 examples were longer than 12 tokens and were dropped (--truncation drop)", error);
    }

    [Fact]
    public void Eval_samples_hold_each_prompt_its_reference_and_what_the_model_answers()
    {
        var samples = Path.Combine(temp.FullName, "samples.jsonl");
        var (exit, output, error) = CliHarness.Run("eval", "--model", Model, "--task", "sft", "--data", ChatFolder(), "--num-eval", "8",
            "--samples", samples, "--num-samples", "3", "--max-new-tokens", "5");
        Assert.True(exit == 0, error);
        Assert.Contains($"answers to 3 of them in {samples}", output);
        var text = File.ReadAllLines(samples);
        Assert.Contains("<|im_start|>assistant\\n", text[0]);     // markers readable in the file, not \u003C-escaped
        var lines = text.Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal([0, 1, 2], lines.Select(l => (int)l["example"]!));
        foreach (var line in lines)
        {
            // ChatML: the prompt ends with the assistant's header; the reference is a trained answer.
            Assert.EndsWith("<|im_start|>assistant\n", (string)line["prompt"]!);
            Assert.Matches(@"^The \w+ ran to the park and played\.", (string)line["reference"]!);
            Assert.Contains((string)line["stopped"]!, new[] { "end_of_turn", "max_new_tokens" });
            Assert.False(string.IsNullOrEmpty((string)line["generated"]!) && (string)line["stopped"]! == "max_new_tokens");
        }

        (exit, _, error) = CliHarness.Run("eval", "--model", Model, "--task", "lm", "--data", SharedData.Require("corpus/tinyshakespeare.txt"),
            "--samples", samples);
        Assert.Equal(2, exit);
        Assert.Equal("error: samples: only the sft task writes generation samples; lm does not", error.Trim());
        Assert.Equal(3, File.ReadAllLines(samples).Length);     // the earlier samples are left as they were
    }

    [Fact]
    public void A_context_that_cuts_every_answer_away_says_so_instead_of_an_empty_sample()
    {
        // ChatML conversations of about 72 tokens whose answer starts near token 55: 40 keep no answer token.
        var (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "sft", "--data", ChatFolder(), "--out", Path.Combine(temp.FullName, "short"),
            "--context", "40", "--num-dev", "0");
        Assert.Equal(2, exit);
        Assert.Equal("error: sft: the train sample is empty (num_train 1000, train pool 8); 16 drawn examples were dropped: too long for --context 40, " +
            "or left with no response token within it", error.Trim());
    }
}
