using System.Text.Json.Nodes;
using ChainLora.IO;

namespace ChainLora.Tests.Cli;

/// <summary>`chainlora train` and `chainlora eval` end to end on stories260K (skip without ../shared), with small samples.</summary>
public sealed class TaskCliTests : IDisposable
{
    readonly DirectoryInfo temp = Directory.CreateTempSubdirectory("chainlora-taskcli-");

    public void Dispose() => temp.Delete(recursive: true);

    static string Model => SharedData.Require("models/stories260K");

    static readonly Dictionary<string, string> Folders = new()
    {
        ["sst2"] = "data/sst2", ["rte"] = "data/superglue/RTE", ["cb"] = "data/superglue/CB", ["boolq"] = "data/superglue/BoolQ",
        ["wsc"] = "data/superglue/WSC", ["wic"] = "data/superglue/WiC", ["multirc"] = "data/superglue/MultiRC",
        ["copa"] = "data/superglue/COPA", ["record"] = "data/superglue/ReCoRD", ["squad"] = "data/squad",
        ["lm"] = "corpus/tinyshakespeare.txt",
    };

    static JsonNode LastJsonLine(string output) =>
        JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;

    (JsonNode Result, string Out) Train(string task, string data, params string[] extra)
    {
        var outDir = Path.Combine(temp.FullName, $"{task}-{Guid.NewGuid():N}");
        var (exit, output, error) = CliHarness.Run(["train", "--model", Model, "--task", task, "--data", data, "--out", outDir, "--json", .. extra]);
        Assert.True(exit == 0, error);
        var line = LastJsonLine(output);
        var file = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        Assert.True(JsonNode.DeepEquals(line, file), "the last stdout line differs from result.json");
        return (file, outDir);
    }

    [Fact]
    public void Sst2_train_writes_result_json_with_every_field()
    {
        var outDir = Path.Combine(temp.FullName, "sst2-run");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "notes.txt"), "mine");
        var (exit, output, error) = CliHarness.Run("train", "--model", Model, "--task", "SST2", "--data", SharedData.Require("data/sst2"),
            "--method", "lora", "--num-train", "32", "--num-dev", "16", "--num-eval", "32", "--epochs", "1", "--lr", "1e-3",
            "--batch-size", "8", "--seed", "7", "--out", outDir, "--delta-spectra", "--json");
        Assert.True(exit == 0, error);
        var r = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        Assert.True(JsonNode.DeepEquals(LastJsonLine(output), r));

        Assert.Equal("sst2", (string)r["task"]!);
        Assert.Equal("lora", (string)r["method"]!);
        Assert.Equal(7, (long)r["seed"]!);
        var h = r["hyperparameters"]!;
        Assert.Equal((1, 1e-3, 8, "adamw", 1), ((int)h["epochs"]!, (double)h["learning_rate"]!, (int)h["batch_size"]!, (string)h["optimizer"]!, (int)h["chain_length"]!));
        Assert.Equal([8], h["ranks"]!.AsArray().Select(x => (int)x!));
        Assert.Equal(["q_proj", "v_proj"], h["targets"]!.AsArray().Select(x => (string)x!));
        Assert.Equal((32, 16, 32, "fp32", "cpu"), ((int)h["num_train"]!, (int)h["num_dev"]!, (int)h["num_eval"]!, (string)h["base_dtype"]!, (string)h["device"]!));
        Assert.False((bool)h["gradient_checkpointing"]!);
        var d = r["data"]!;
        Assert.Equal((32, 16, 32, false), ((int)d["train"]!, (int)d["dev"]!, (int)d["test"]!, (bool)d["carved"]!));
        Assert.Equal(872, (int)d["validation_pool"]!);
        var t = r["training"]!;
        Assert.Equal(4, (int)t["steps"]!);
        var link = Assert.Single(t["links"]!.AsArray())!;
        Assert.Equal(4, link["losses"]!.AsArray().Count);
        Assert.True((long)t["trainable_parameters"]! > 0);
        Assert.True((double)r["training_flops"]! > 0);
        Assert.InRange((double)r["test"]!["accuracy"]!, 0, 1);
        Assert.InRange((double)r["dev"]!["accuracy"]!, 0, 1);
        Assert.True((double)r["wall_seconds"]! > 0);

        // Four steps, then (--delta-spectra) the spectrum of the trained delta W; its effective rank is the link's in result.json.
        var log = File.ReadAllLines(Path.Combine(outDir, "train_log.jsonl"));
        Assert.Equal(5, log.Length);
        Assert.Equal((double)link["delta_effective_rank"]!, (double)JsonNode.Parse(log[^1])!["delta"]!["effective_rank"]!);
        Assert.InRange((double)link["delta_effective_rank"]!, 1, 8);   // a rank-8 update
        Assert.Equal("mine", File.ReadAllText(Path.Combine(outDir, "notes.txt")));
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
    }

    [Fact]
    public void Cola_runs_a_chain_with_stepped_down_ranks()
    {
        var (r, _) = Train("cb", SharedData.Require("data/superglue/CB"), "--method", "cola", "--chain-length", "3", "--ranks", "8,4",
            "--num-train", "24", "--num-dev", "8", "--num-eval", "16", "--epochs", "3", "--batch-size", "8", "--lr", "1e-3",
            "--gradient-checkpointing");
        Assert.Equal([8, 4, 4], r["hyperparameters"]!["ranks"]!.AsArray().Select(x => (int)x!));
        Assert.True((bool)r["hyperparameters"]!["gradient_checkpointing"]!);
        var links = r["training"]!["links"]!.AsArray();
        Assert.Equal(3, links.Count);
        Assert.All(links, l => Assert.Equal(3, (int)l!["steps"]!));
    }

    public static TheoryData<string> SharedTasks => new(Folders.Keys);

    [Theory, MemberData(nameof(SharedTasks))]
    public void Every_task_trains_and_evaluates_on_the_shared_data(string task)
    {
        var data = SharedData.Require(Folders[task]);
        var (r, _) = Train(task, data, "--num-train", "8", "--num-dev", "4", "--num-eval", "6", "--epochs", "1", "--batch-size", "4", "--lr", "1e-3");
        var test = r["test"]!.AsObject();
        var expected = task switch { "squad" => ["f1", "exact_match"], "lm" => ["nll_per_token", "perplexity"], _ => new[] { "accuracy" } };
        Assert.Equal(expected, test.Select(p => p.Key));
        Assert.All(test, p => Assert.True(double.IsFinite((double)p.Value!)));
        Assert.Equal(2, r["training"]!["steps"]!.GetValue<int>());
        if (task == "boolq") Assert.True((bool)r["data"]!["carved"]!);
    }

    [Fact]
    public void Eval_reports_zero_shot_and_in_context_results_as_the_last_json_line()
    {
        var data = SharedData.Require("data/superglue/COPA");
        var (exit, output, error) = CliHarness.Run("eval", "--model", Model, "--task", "copa", "--data", data, "--num-eval", "20", "--json");
        Assert.True(exit == 0, error);
        var zeroShot = LastJsonLine(output);
        Assert.Equal(0, (int)zeroShot["demonstrations"]!);
        Assert.Equal(20, (int)zeroShot["data"]!["test"]!);
        Assert.InRange((double)zeroShot["test"]!["accuracy"]!, 0, 1);

        (exit, output, error) = CliHarness.Run("eval", "--model", Model, "--task", "copa", "--data", data, "--num-eval", "20", "--icl", "2", "--json");
        Assert.True(exit == 0, error);
        Assert.Equal(2, (int)LastJsonLine(output)["demonstrations"]!);

        (exit, output, error) = CliHarness.Run("eval", "--model", Model, "--task", "copa", "--data", data, "--num-eval", "4");
        Assert.True(exit == 0, error);
        Assert.Contains("copa zero-shot, seed 0: test accuracy", output);
    }

    [Fact]
    public void Drop_and_full_record_train_and_evaluate_on_small_files()
    {
        var drop = Directory.CreateDirectory(Path.Combine(temp.FullName, "drop")).FullName;
        string Passage(int i) => $$$"""
            "p{{{i}}}": {"passage": "Team {{{i}}} scored {{{i + 2}}} touchdowns in the game.", "qa_pairs": [
              {"question": "How many touchdowns did team {{{i}}} score?", "answer": {"number": "{{{i + 2}}}", "date": {"day": "", "month": "", "year": ""}, "spans": []}},
              {"question": "Which team scored?", "answer": {"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["Team {{{i}}}"]}}]}
            """;
        File.WriteAllText(Path.Combine(drop, "drop_dataset_train.json"), "{" + string.Join(",", Enumerable.Range(0, 4).Select(Passage)) + "}");
        File.WriteAllText(Path.Combine(drop, "drop_dataset_dev.json"), "{" + string.Join(",", Enumerable.Range(4, 3).Select(Passage)) + "}");
        var (r, _) = Train("drop", drop, "--num-train", "6", "--num-dev", "2", "--num-eval", "6", "--epochs", "1", "--batch-size", "3");
        Assert.Equal((6, 2, 6), ((int)r["data"]!["train"]!, (int)r["data"]!["dev"]!, (int)r["data"]!["test"]!));
        Assert.InRange((double)r["test"]!["f1"]!, 0, 1);

        var record = Directory.CreateDirectory(Path.Combine(temp.FullName, "record")).FullName;
        string Line(int i) =>
            $$$"""{"idx": {{{i}}}, "passage": {"text": "Tom met Ann in Paris.\n@highlight\nAnn likes Paris", "entities": [{"start": 0, "end": 2}, {"start": 8, "end": 10}, {"start": 15, "end": 19}]}, "qas": [{"query": "@placeholder loves Paris.", "answers": [{"start": 8, "end": 10, "text": "Ann"}], "idx": {{{2 * i}}}}, {"query": "Tom went to @placeholder.", "answers": [{"start": 15, "end": 19, "text": "Paris"}], "idx": {{{2 * i + 1}}}}]}""";
        File.WriteAllLines(Path.Combine(record, "train.jsonl"), Enumerable.Range(0, 3).Select(Line));
        File.WriteAllLines(Path.Combine(record, "val.jsonl"), Enumerable.Range(3, 2).Select(Line));
        (r, _) = Train("record", record, "--num-train", "6", "--num-dev", "0", "--num-eval", "4", "--epochs", "1", "--batch-size", "3");
        Assert.Equal(4, (int)r["data"]!["test"]!);
        Assert.Null(r["dev"]);
        Assert.InRange((double)r["test"]!["accuracy"]!, 0, 1);
    }

    [Fact]
    public void A_diverging_train_exits_3_and_records_where_in_result_json()
    {
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var outDir = Path.Combine(temp.FullName, "diverged");
        // AdamW at lr 1e3 grows B far beyond the weights within a link: the knot refuses the delta.
        var (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "lm", "--data", text, "--out", outDir, "--method", "cola",
            "--num-train", "16", "--num-dev", "4", "--num-eval", "4", "--epochs", "2", "--batch-size", "4", "--lr", "1e3");
        Assert.Equal(3, exit);
        Assert.Matches(@"error: loss diverged at step \d+ \(link 1\): refusing to tie a knot: .* exceeds 10 x max", error);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        Assert.Equal("diverged", (string)result["status"]!);
        Assert.StartsWith("loss diverged at step", (string)result["divergence"]!);
        Assert.Empty(result["test"]!.AsObject());
        (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "lm", "--data", text, "--out", outDir, "--lr", "Infinity");
        Assert.Equal(2, exit);
        Assert.Contains("--lr Infinity: must be a positive number", error);
    }

    [Fact]
    public void A_run_folder_is_locked_while_in_use_and_an_earlier_run_is_not_replaced_silently()
    {
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var outDir = Path.Combine(temp.FullName, "shared-out");
        string[] args = ["train", "--model", Model, "--task", "lm", "--data", text, "--out", outDir, "--num-train", "4", "--num-dev", "1",
            "--num-eval", "2", "--epochs", "1", "--batch-size", "2", "--json"];
        using (ChainLora.IO.FolderLock.Acquire(outDir))
        {
            var (busy, _, busyError) = CliHarness.Run(args);
            Assert.Equal(2, busy);
            Assert.Contains("in use by another", busyError);
        }
        var (exit, _, error) = CliHarness.Run(args);
        Assert.True(exit == 0, error);
        var first = File.ReadAllText(Path.Combine(outDir, "result.json"));
        (exit, _, error) = CliHarness.Run(args);
        Assert.Equal(2, exit);
        Assert.Contains("holds a run (train_log.jsonl, result.json)", error);
        Assert.Equal(first, File.ReadAllText(Path.Combine(outDir, "result.json")));
        (exit, _, error) = CliHarness.Run([.. args, "--overwrite"]);
        Assert.True(exit == 0, error);

        // A checkpoint only under the hidden name a swap killed midway leaves is still the earlier run's:
        // refused without --overwrite, and deleted with it (it would otherwise come back at the next save).
        var hidden = Path.Combine(outDir, ".checkpoint.old-4242");
        Directory.CreateDirectory(hidden);
        File.WriteAllText(Path.Combine(hidden, "state.json"), "{}");
        File.Delete(Path.Combine(outDir, "train_log.jsonl"));
        File.Delete(Path.Combine(outDir, "result.json"));
        Directory.Delete(Path.Combine(outDir, "chain"), recursive: true);
        (exit, _, error) = CliHarness.Run(args);
        Assert.Equal(2, exit);
        Assert.Contains("holds a run (checkpoint)", error);
        (exit, _, error) = CliHarness.Run([.. args, "--overwrite"]);
        Assert.True(exit == 0, error);
        Assert.Empty(Directory.GetDirectories(outDir, ".checkpoint.*"));
        Assert.False(Directory.Exists(Path.Combine(outDir, "checkpoint")), "the earlier run's checkpoint survived --overwrite");
    }

    [Fact]
    public void Resume_refuses_other_options_or_changed_data_naming_them()
    {
        var text = Path.Combine(temp.FullName, "story.txt");
        File.WriteAllLines(text, Enumerable.Range(0, 300).Select(i => $"Once upon a time, a little cat named Tom {i % 7} went to play."));
        var outDir = Path.Combine(temp.FullName, "resume-check");
        string[] args = ["train", "--model", Model, "--task", "lm", "--data", text, "--out", outDir, "--num-train", "4", "--num-dev", "1",
            "--num-eval", "2", "--epochs", "2", "--batch-size", "2", "--checkpoint-every", "1", "--json"];
        var (exit, _, error) = CliHarness.Run(args);
        Assert.True(exit == 0, error);
        (exit, _, error) = CliHarness.Run([.. args, "--resume", outDir, "--seed", "5"]);
        Assert.Equal(2, exit);
        Assert.Contains("seed was 0 in the interrupted run and is 5 now", error);
        (exit, _, error) = CliHarness.Run([.. args, "--resume", outDir, "--rank", "4"]);
        Assert.Equal(2, exit);
        Assert.Contains("rank was 8 in the interrupted run and is 4 now", error);
        (exit, _, error) = CliHarness.Run([.. args, "--resume", outDir, "--split", "contiguous"]);
        Assert.Equal(2, exit);
        Assert.Contains("split was shuffled in the interrupted run and is contiguous now", error);
        File.AppendAllText(text, "A new line changes the data.\n");
        (exit, _, error) = CliHarness.Run([.. args, "--resume", outDir]);
        Assert.Equal(2, exit);
        Assert.Contains("data was story.txt sha256:", error);
    }

    [Fact]
    public void Source_scores_the_models_own_domain_beside_the_task_and_training_on_another_raises_it()
    {
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var stories = SharedData.Require("corpus/tinystories-sample.txt");
        // Every window of the file at the model's 512 positions: shared/README.md's 1.904 nats per token.
        var (exit, output, error) = CliHarness.Run("eval", "--model", Model, "--task", "lm", "--data", text, "--num-eval", "1", "--num-train", "1",
            "--source", stories, "--source-windows", "100000", "--json");
        Assert.True(exit == 0, error);
        Assert.Equal(1.904, (double)JsonNode.Parse(output.Trim().Split('\n')[^1])!["source"]!["nll_per_token"]!, 0.0015);

        string[] common = ["--model", Model, "--task", "lm", "--data", text, "--context", "128", "--source", stories, "--source-windows", "40", "--json"];
        (exit, output, error) = CliHarness.Run(["eval", .. common, "--num-eval", "4", "--num-train", "1"]);
        Assert.True(exit == 0, error);
        var before = (double)JsonNode.Parse(output.Trim().Split('\n')[^1])!["source"]!["nll_per_token"]!;
        var outDir = Path.Combine(temp.FullName, "forget");
        (exit, _, error) = CliHarness.Run(["train", .. common, "--out", outDir, "--num-train", "16", "--num-dev", "2", "--num-eval", "4",
            "--epochs", "2", "--batch-size", "4", "--lr", "3e-2"]);
        Assert.True(exit == 0, error);
        var after = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!["source"]!;
        Assert.True((double)after["nll_per_token"]! > before + 0.01, $"source NLL {before} -> {(double)after["nll_per_token"]!}");
        Assert.InRange((double)after["tokens"]!, 39 * 127 + 1, 40 * 127);   // 40 windows of up to 127 scored tokens (the file's last is shorter)
    }

    [Fact]
    public void A_contiguous_split_and_rslora_are_recorded_in_result_json_and_the_split_refused_for_other_tasks()
    {
        var text = Path.Combine(temp.FullName, "story.txt");
        File.WriteAllLines(text, Enumerable.Range(0, 300).Select(i => $"Once upon a time, a little cat named Tom {i % 7} went to play."));
        var outDir = Path.Combine(temp.FullName, "contiguous");
        var (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "lm", "--data", text, "--out", outDir, "--num-train", "4",
            "--num-dev", "2", "--num-eval", "2", "--epochs", "1", "--batch-size", "2", "--context", "32", "--split", "contiguous", "--rslora", "--json");
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        Assert.Equal("contiguous", (string)result["hyperparameters"]!["split"]!);
        Assert.Equal("contiguous", (string)result["data"]!["split"]!);
        Assert.True((int)result["data"]!["dev_pool"]! > 0);
        Assert.True((bool)result["hyperparameters"]!["use_rslora"]!);
        Assert.StartsWith("contiguous regions at line breaks: story.txt characters [0, ", (string)result["data"]!["note"]!);
        (exit, _, error) = CliHarness.Run("train", "--model", Model, "--task", "sst2", "--data", temp.FullName, "--out", Path.Combine(temp.FullName, "sst2"),
            "--split", "contiguous");
        Assert.Equal(2, exit);
        Assert.Contains("split contiguous: only the lm task cuts its text into regions; sst2 keeps its own splits", error);
    }

    [Fact]
    public void Lm_trains_on_a_text_file_and_reports_held_out_perplexity()
    {
        var text = Path.Combine(temp.FullName, "story.txt");
        File.WriteAllLines(text, Enumerable.Range(0, 300).Select(i => $"Once upon a time, a little cat named Tom {i % 7} went to play."));
        var (r, _) = Train("lm", text, "--num-train", "4", "--num-dev", "1", "--num-eval", "2", "--epochs", "2", "--batch-size", "2", "--lr", "1e-3");
        var nll = (double)r["test"]!["nll_per_token"]!;
        Assert.Equal(Math.Exp(nll), (double)r["test"]!["perplexity"]!, 6);
        Assert.Contains("90/10", (string)r["data"]!["note"]!);
    }

    [Fact]
    public void Context_sets_the_lm_window_length_and_is_refused_where_it_cannot_apply()
    {
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var (r, _) = Train("lm", text, "--context", "32", "--num-train", "4", "--num-dev", "2", "--num-eval", "3", "--epochs", "1", "--batch-size", "2");
        Assert.Equal(32, (int)r["hyperparameters"]!["context"]!);
        Assert.Contains("windows of up to 32 tokens", (string)r["data"]!["note"]!);
        Assert.InRange((long)r["training"]!["tokens"]!, 2 * 2 * 30, 4 * 32);
        var (full, _) = Train("lm", text, "--num-train", "4", "--num-dev", "2", "--num-eval", "3", "--epochs", "1", "--batch-size", "2");
        Assert.Null(full["hyperparameters"]!["context"]);
        // The same train text cut into windows of 31 and 511 new tokens (each after BOS): both pools cover it exactly.
        int narrow = (int)r["data"]!["train_pool"]!, wide = (int)full["data"]!["train_pool"]!;
        var tokens = Enumerable.Range((narrow - 1) * 31 + 1, 31).Intersect(Enumerable.Range((wide - 1) * 511 + 1, 511));
        Assert.NotEmpty(tokens);
        Assert.True(narrow > 10 * wide, $"{narrow} windows of 32 tokens against {wide} of 512");

        // Less context predicts worse: the untrained model's held-out NLL per token at 16 tokens exceeds that at 128.
        double Nll(int context)
        {
            var (exit, output, error) = CliHarness.Run("eval", "--model", Model, "--task", "lm", "--data", text, "--context", $"{context}",
                "--num-eval", "64", "--json");
            Assert.True(exit == 0, error);
            return (double)LastJsonLine(output)["test"]!["nll_per_token"]!;
        }
        Assert.True(Nll(16) > Nll(128) + 0.05, "a 16-token window scored no worse than a 128-token one");

        // The held-out NLL at a context is `perplexity` of the validation text at that context.
        var corpus = Directory.CreateDirectory(Path.Combine(temp.FullName, "corpus")).FullName;
        var lines = File.ReadAllLines(text);
        File.WriteAllLines(Path.Combine(corpus, "train.txt"), lines[..2000]);
        File.WriteAllLines(Path.Combine(corpus, "val.txt"), lines[2000..2600]);
        var (_, scored, failed) = CliHarness.Run("eval", "--model", Model, "--task", "lm", "--data", corpus, "--context", "48", "--num-eval", "100000", "--json");
        var (_, measured, failed2) = CliHarness.Run("perplexity", "--model", Model, "--text", Path.Combine(corpus, "val.txt"), "--context", "48", "--json");
        Assert.True(failed.Length == 0 && failed2.Length == 0, failed + failed2);
        Assert.Equal((double)LastJsonLine(measured)["nll_per_token"]!, (double)LastJsonLine(scored)["test"]!["nll_per_token"]!, 5);

        var (code, _, message) = CliHarness.Run("eval", "--model", Model, "--task", "lm", "--data", text, "--context", "600");
        Assert.Equal(2, code);
        Assert.Contains("context 600: must be between 2 and the model's 512 positions", message);
        (code, _, message) = CliHarness.Run("eval", "--model", Model, "--task", "sst2", "--data", SharedData.Require("data/sst2"), "--context", "64");
        Assert.Equal(2, code);
        Assert.Contains("context 64: only the lm task cuts its text into windows", message);
        (code, _, message) = CliHarness.Run("train", "--model", Model, "--task", "lm", "--data", text, "--context", "1", "--out", Path.Combine(temp.FullName, "c1"));
        Assert.Equal(2, code);
        Assert.Contains("context 1: must be at least 2", message);
    }

    [Fact]
    public void Cola_variant_best_trains_as_the_variant_it_names_and_records_that_name()
    {
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var best = EnumNames.Name(EnumNames.Parse<ChainLora.Training.ColaVariant>("best", "--cola-variant"));
        string[] run = ["--method", "cola", "--chain-length", "2", "--context", "32", "--num-train", "8", "--num-dev", "2", "--num-eval", "2",
            "--epochs", "2", "--batch-size", "4", "--lr", "3e-3"];
        var (alias, _) = Train("lm", text, [.. run, "--cola-variant", "best"]);
        var (named, _) = Train("lm", text, [.. run, "--cola-variant", best]);
        Assert.Equal(best, (string)alias["hyperparameters"]!["variant"]!);
        Assert.True(JsonNode.DeepEquals(named["training"]!["links"], alias["training"]!["links"]), "best trained unlike the variant it names");
        Assert.True(JsonNode.DeepEquals(named["test"], alias["test"]));
        var (paper, _) = Train("lm", text, [.. run]);
        Assert.Equal(best == "paper", JsonNode.DeepEquals(paper["training"]!["links"], alias["training"]!["links"]));
    }

    [Fact]
    public void Train_without_json_prints_a_summary_per_link_and_the_metrics()
    {
        var outDir = Path.Combine(temp.FullName, "wsc-text");
        var (exit, output, error) = CliHarness.Run("train", "--model", Model, "--task", "wsc", "--data", SharedData.Require("data/superglue/WSC"),
            "--method", "cola", "--chain-length", "2", "--num-train", "8", "--num-dev", "4", "--num-eval", "4", "--epochs", "2", "--out", outDir);
        Assert.True(exit == 0, error);
        Assert.Contains("wsc cola, seed 0: 2 steps over 2 link(s)", output);
        Assert.Contains("link 2 (rank 8): mean train loss", output);
        Assert.Contains("test accuracy", output);
        Assert.Contains(Path.Combine(outDir, "result.json"), output);
    }

    [Theory]
    [InlineData("train", "--method", "--chain-length", "--ranks", "--num-dev", "--out", "--optimizer", "--targets", "--base-dtype")]
    [InlineData("eval", "--task", "--data", "--icl", "--num-eval", "--num-train", "--seed", "--json")]
    public void Help_lists_the_options(string command, params string[] options)
    {
        var (exit, output, _) = CliHarness.Run(command, "--help");
        Assert.Equal(0, exit);
        Assert.All(options, o => Assert.Contains(o, output));
    }

    [Theory]
    [InlineData("train", "--task", "imdb")]
    [InlineData("train", "--task", "sst2", "--method", "lora", "--chain-length", "3")]
    [InlineData("train", "--task", "sst2", "--ranks", "8,x")]
    [InlineData("train", "--task", "sst2", "--num-eval", "0")]
    [InlineData("eval", "--task", "sst2", "--icl", "-1")]
    public void Bad_usage_exits_2_with_one_line(params string[] args)
    {
        var model = Model;
        var outDir = Path.Combine(temp.FullName, "bad");
        string[] common = args[0] == "train" ? ["--model", model, "--data", SharedData.Require("data/sst2"), "--out", outDir] : ["--model", model, "--data", SharedData.Require("data/sst2")];
        var (exit, _, error) = CliHarness.Run([.. args, .. common]);
        Assert.Equal(2, exit);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Missing_data_and_too_many_demonstrations_are_user_errors()
    {
        var (exit, _, error) = CliHarness.Run("eval", "--model", Model, "--task", "cb", "--data", "/nonexistent/cb");
        Assert.Equal(2, exit);
        Assert.Contains("/nonexistent/cb", error);
        (exit, _, error) = CliHarness.Run("eval", "--model", Model, "--task", "cb", "--data", SharedData.Require("data/superglue/CB"),
            "--num-train", "2", "--icl", "3", "--num-eval", "2");
        Assert.Equal(2, exit);
        Assert.Contains("3 in-context demonstrations", error);
    }
}
