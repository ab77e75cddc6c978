using ChainLora.IO;
using ChainLora.Training;

namespace ChainLora.Tests.Cli;

/// <summary>
/// Every number and path an option takes, given a bad value: exit 2 and one line on stderr that
/// names the option. Most are refused while parsing, before any model is read.
/// </summary>
public sealed class BadInputTests : TempFolderTest
{
    /// <summary>
    /// What each command is given besides the row's own options. The model is an empty folder: a
    /// row that is refused while parsing never reads it, and one that is not fails on it without
    /// naming the row's option.
    /// </summary>
    static readonly Dictionary<string, string> Base = new()
    {
        ["train"] = "--model {dir} --task sst2 --data {dir} --out {new}",
        ["eval"] = "--model {dir} --task sst2 --data {dir}",
        ["generate"] = "--model {dir} --prompt hi",
        ["perplexity"] = "--model {dir} --text {file}",
        ["bench"] = "--shape tiny260k",
        ["demo"] = "",
        ["frank-wolfe"] = "",
        ["experiment"] = "--config {file} --out {new} --dry-run",
        ["experiment status"] = "",
        ["run-job"] = "",
        ["report"] = "",
        ["export"] = "--run {dir} --format peft --out {new}",
    };

    /// <summary>A command line with placeholders ({file}: an existing file, {dir}: an existing folder, {new}: a path not there) and the name it must carry.</summary>
    public static TheoryData<string, string> BadValues => new()
    {
        { "train --rank 0", "--rank" }, { "train --rank -1", "--rank" }, { "train --rank 99999999999", "--rank" },
        { "train --ranks 8,99999999999", "--ranks" }, { "train --ranks 8,0", "--ranks" }, { "train --ranks 4,-2", "--ranks" },
        { "train --alpha 0", "--alpha" }, { "train --alpha NaN", "--alpha" }, { "train --alpha Infinity", "--alpha" },
        { "train --lora-dropout 1", "--lora-dropout" }, { "train --lora-dropout NaN", "--lora-dropout" },
        { "train --epochs 0", "--epochs" }, { "train --epochs 99999999999", "--epochs" },
        { "train --lr 0", "--lr" }, { "train --lr -1e-3", "--lr" }, { "train --lr NaN", "--lr" }, { "train --lr Infinity", "--lr" },
        { "train --weight-decay -1", "--weight-decay" }, { "train --weight-decay Infinity", "--weight-decay" },
        { "train --momentum 1", "--momentum" }, { "train --momentum NaN", "--momentum" },
        { "train --warmup-ratio 1", "--warmup-ratio" }, { "train --warmup-ratio -0.1", "--warmup-ratio" },
        { "train --max-grad-norm -1", "--max-grad-norm" }, { "train --max-grad-norm NaN", "--max-grad-norm" },
        { "train --batch-size 0", "--batch-size" }, { "train --grad-accum 0", "--grad-accum" },
        { "train --num-train -1", "--num-train" }, { "train --num-dev -1", "--num-dev" }, { "train --num-eval 0", "--num-eval" },
        { "train --context 1", "--context" }, { "train --context -5", "--context" },
        { "train --checkpoint-every -1", "--checkpoint-every" },
        { "train --knot-window -1", "--knot-window" }, { "train --knot-threshold 1", "--knot-threshold" }, { "train --knot-threshold NaN", "--knot-threshold" },
        { "train --chain-length 0", "--chain-length" }, { "train --chain-length -3", "--chain-length" },
        { "train --seed 99999999999999999999", "--seed" },
        { "train --out {file}", "--out" }, { "train --out {file}/run", "--out" }, { "train --tensorboard {file}", "--tensorboard" },
        { "train --data {new}", "--data" }, { "train --adapter {file}", "--adapter" }, { "train --adapter {new}", "--adapter" },
        { "train --resume {file}", "--resume" }, { "train --resume {new}", "--resume" },
        { "eval --icl -1", "--icl" }, { "eval --num-eval 0", "--num-eval" }, { "eval --num-train -1", "--num-train" },
        { "eval --context 1", "--context" }, { "eval --adapter {file}", "--adapter" }, { "eval --data {new}", "--data" },
        { "generate --max-new-tokens 0", "--max-new-tokens" }, { "generate --max-new-tokens 99999999999", "--max-new-tokens" },
        { "generate --temperature -1", "--temperature" }, { "generate --temperature NaN", "--temperature" }, { "generate --temperature Infinity", "--temperature" },
        { "perplexity --batch-size 0", "--batch-size" }, { "perplexity --context 1", "--context" },
        { "perplexity --text {dir}", "--text" }, { "perplexity --text {new}", "--text" },
        { "bench --batch 0", "--batch" }, { "bench --batch 99999999999", "--batch" }, { "bench --seq 1", "--seq" },
        { "bench --steps 0", "--steps" }, { "bench --warmup -1", "--warmup" }, { "bench --threads -1", "--threads" },
        { "demo --steps 5", "--steps" }, { "demo --lr 0", "--lr" }, { "demo --lr NaN", "--lr" }, { "demo --lr Infinity", "--lr" },
        { "frank-wolfe --iterations 0", "--iterations" }, { "frank-wolfe --power-iterations -1", "--power-iterations" },
        { "frank-wolfe --step-scale 0", "--step-scale" }, { "frank-wolfe --step-scale NaN", "--step-scale" }, { "frank-wolfe --step-scale Infinity", "--step-scale" },
        { "frank-wolfe --plot {dir}", "--plot" }, { "frank-wolfe --plot {file}/gap.png", "--plot" },
        { "experiment --jobs 0", "--jobs" }, { "experiment --threads -1", "--threads" }, { "experiment --cpus-per-task 0", "--cpus-per-task" },
        { "experiment --max-parallel 0", "--max-parallel" }, { "experiment --scheduler pbs", "--scheduler" },
        { "experiment --config {dir}", "--config" }, { "experiment --config {new}", "--config" },
        { "experiment --out {file}", "--out" }, { "experiment --tensorboard {file}", "--tensorboard" },
        { "experiment status {file}", "DIR" }, { "experiment status {new}", "DIR" },
        { "run-job {dir}", "SPEC" }, { "run-job {new}", "SPEC" }, { "run-job {file} --tensorboard {file}", "--tensorboard" },
        { "report {file}", "DIR" }, { "report {dir} --out {file}", "--out" },
        { "export --run {file}", "--run" }, { "export --run {new}", "--run" }, { "export --out {file}", "--out" },
        { "export --format gguf", "--format" }, { "export --dtype fp8", "--dtype" }, { "export --max-shard-size 0", "--max-shard-size" },
        { "train --base-dtype fp8", "--base-dtype" }, { "train --optimizer lion", "--optimizer" }, { "train --device tpu", "--device" },
        { "train --split interleaved", "--split" }, { "eval --split interleaved", "--split" },
        { "train --source {dir}", "--source" }, { "train --source {new}", "--source" }, { "train --source-windows 0", "--source-windows" },
        { "eval --source {new}", "--source" }, { "eval --source-windows -1", "--source-windows" },
        { "frank-wolfe --oracle-failure 0", "--oracle-failure" }, { "frank-wolfe --oracle-failure 1", "--oracle-failure" },
    };

    [Theory, MemberData(nameof(BadValues))]
    public void A_bad_value_exits_2_with_one_line_naming_the_option(string line, string named)
    {
        var (exit, error) = Run(line);
        Assert.True(exit == 2, $"exit {exit}: {error}");
        var message = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(named, message);
    }

    [Theory]
    [InlineData("train --out {ro}/run", "--out")]
    [InlineData("train --tensorboard {ro}/tb", "--tensorboard")]
    [InlineData("export --out {ro}/export", "--out")]
    [InlineData("experiment --out {ro}/grid", "--out")]
    [InlineData("experiment --tensorboard {ro}", "--tensorboard")]
    [InlineData("report {dir} --out {ro}/report", "--out")]
    [InlineData("frank-wolfe --plot {ro}/gap.png", "--plot")]
    public void A_folder_that_cannot_be_written_is_refused_naming_the_option(string line, string named)
    {
        using var readOnly = new ReadOnlyFolder();
        var (exit, error) = Run(line.Replace("{ro}", readOnly.Root, StringComparison.Ordinal));
        Assert.True(exit == 2, $"exit {exit}: {error}");
        var message = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(named, message);
        Assert.Contains(readOnly.Root, message);
        Assert.Empty(Directory.GetFileSystemEntries(readOnly.Root));
    }

    [Theory]
    [InlineData("train --cola-variant nonsense", "--cola-variant 'nonsense'")]
    [InlineData("export --format gguf", "--format 'gguf'")]
    public void A_word_not_among_the_choices_is_one_line_with_the_option_the_value_and_the_choices(string line, string named)
    {
        var (exit, error) = Run(line);
        Assert.Equal(2, exit);
        var message = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var choices = line.StartsWith("export", StringComparison.Ordinal) ? EnumNames.All<ChainLora.Recipes.ExportFormat>() : EnumNames.Accepted<ColaVariant>();
        Assert.Contains($"{named}: expected one of {string.Join(", ", choices)}", message);
    }

    [Fact]
    public void A_chain_longer_than_the_run_is_one_short_line_with_the_option_the_value_and_the_limit()
    {
        var model = SharedData.Require("models/stories260K");
        var data = SharedData.Require("data/sst2");
        // 8 examples in one batch for one epoch: a single optimizer step.
        var (exit, _, error) = CliHarness.Run("train", "--model", model, "--task", "sst2", "--data", data, "--out", PathIn("run"), "--method", "cola",
            "--chain-length", "1000", "--num-train", "8", "--num-dev", "2", "--num-eval", "2", "--epochs", "1", "--batch-size", "8");
        Assert.Equal(2, exit);
        var message = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("chain length 1000 (--chain-length): the run takes 1 optimizer steps", message);
        Assert.True(message.Length < 200, $"{message.Length} characters: {message}");
    }

    [Fact]
    public void An_infinite_learning_rate_in_an_experiment_config_names_the_file_the_field_and_the_value()
    {
        Directory.CreateDirectory(PathIn("model"));
        Directory.CreateDirectory(PathIn("d"));
        var config = PathIn("grid.json");
        // 1e999 is past double's range: System.Text.Json reads it as infinity.
        File.WriteAllText(config, """
            { "model": "model", "data_root": ".", "tasks": [{ "name": "sst2", "data": "d" }],
              "methods": [{ "name": "LoRA", "kind": "lora" }], "learning_rates": [1e-3, 1e999] }
            """);
        var (exit, _, error) = CliHarness.Run("experiment", "--config", config, "--out", PathIn("grid"), "--dry-run");
        Assert.Equal(2, exit);
        var message = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"{config}: field 'learning_rates': Infinity is not a positive finite number", message);
        Assert.False(Directory.Exists(PathIn("grid")), "nothing is written for a config that cannot run");

        File.WriteAllText(config, File.ReadAllText(config).Replace("[1e-3, 1e999]", "[1e-3]", StringComparison.Ordinal)
            .Replace("\"kind\": \"lora\"", "\"kind\": \"lora\", \"learning_rates\": [-1e999]", StringComparison.Ordinal));
        (exit, _, error) = CliHarness.Run("experiment", "--config", config, "--out", PathIn("grid"), "--dry-run");
        Assert.Equal(2, exit);
        Assert.Contains("method 'LoRA': field 'learning_rates': -Infinity is not a positive finite number", error);
    }

    (int Exit, string Error) Run(string line)
    {
        var dir = Directory.CreateDirectory(PathIn("folder")).FullName;
        var file = PathIn("file.txt");
        File.WriteAllText(file, "not what any option wants\n");
        string Fill(string text) => text.Replace("{file}", file, StringComparison.Ordinal).Replace("{dir}", dir, StringComparison.Ordinal)
            .Replace("{new}", PathIn($"missing-{Guid.NewGuid():N}"), StringComparison.Ordinal);
        var words = line.Split(' ');
        var command = words.Length > 1 && words[0] == "experiment" && words[1] == "status" ? "experiment status" : words[0];
        var given = words.Where(w => w.StartsWith("--", StringComparison.Ordinal)).ToHashSet();
        var baseWords = Base[command].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var args = words.Select(Fill).ToList();
        for (var i = 0; i < baseWords.Length; i++)
        {
            var takesValue = i + 1 < baseWords.Length && !baseWords[i + 1].StartsWith("--", StringComparison.Ordinal);
            if (!given.Contains(baseWords[i])) args.AddRange(takesValue ? [baseWords[i], Fill(baseWords[i + 1])] : [baseWords[i]]);
            if (takesValue) i++;
        }
        var (exit, _, error) = CliHarness.Run([.. args]);
        return (exit, error);
    }
}
