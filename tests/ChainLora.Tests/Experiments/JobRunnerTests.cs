using System.Text.Json.Nodes;

namespace ChainLora.Tests.Experiments;

/// <summary>A small real grid on stories260K's lm task: specs, `run-job` in process, `report` (skips without ../shared).</summary>
public sealed class JobRunnerTests : TempFolderTest
{
    [Fact]
    public void Run_job_trains_and_scores_each_cell_like_the_commands_and_report_collects_them()
    {
        var (config, grid) = (PathIn("grid.json"), PathIn("grid"));
        var output = LmGrid.PlanTwoCells(config, grid);
        var (model, text) = (SharedData.Require("models/stories260K"), SharedData.Require("corpus/tinyshakespeare.txt"));
        int exit;
        string error;
        Assert.Contains("2 jobs", output);
        var specs = Directory.GetFiles(Path.Combine(grid, "jobs"), "spec.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(2, specs.Count);
        foreach (var spec in specs)
        {
            (exit, output, error) = CliHarness.Run("run-job", spec, "--tensorboard", PathIn("tb"));
            Assert.True(exit == 0, error);
            Assert.EndsWith(": done", output.Trim());
            (exit, output, _) = CliHarness.Run("run-job", spec);
            Assert.EndsWith(": already finished", output.Trim());
        }

        // The COLA cell equals `chainlora train` with the same settings, loss for loss.
        var colaDir = Path.GetDirectoryName(specs.Single(s => s.Contains("cola", StringComparison.Ordinal)))!;
        var cell = JsonNode.Parse(File.ReadAllText(Path.Combine(colaDir, "result.json")))!;
        var direct = PathIn("direct");
        (exit, _, error) = CliHarness.Run("train", "--model", model, "--task", "lm", "--data", text, "--method", "cola", "--chain-length", "2",
            "--ranks", "8,4", "--lr", "3e-3", "--seed", "1", "--epochs", "2", "--num-train", "8", "--num-dev", "2", "--num-eval", "4",
            "--batch-size", "4", "--out", direct, "--tensorboard", PathIn("tb-direct"));
        Assert.True(exit == 0, error);
        var trained = JsonNode.Parse(File.ReadAllText(Path.Combine(direct, "result.json")))!;
        Assert.Equal(4, cell["training"]!["steps"]!.GetValue<int>());
        Assert.True(JsonNode.DeepEquals(trained["training"]!["links"], cell["training"]!["links"]), "the cell's links differ from train's");
        Assert.True(JsonNode.DeepEquals(trained["test"], cell["test"]));
        Assert.Equal("cola", cell["method"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(colaDir, "chain", "chain.json")), "the cell keeps its chain for export");

        // TensorBoard: the cell's events sit in tb/<job id> and tell what train's own events tell.
        static List<TensorBoardFile.Scalar> Events(string dir) =>
            [.. Directory.GetFiles(dir, "events.out.tfevents.*").SelectMany(f => TensorBoardFile.Read(f).Scalars)];
        var cellEvents = Events(PathIn(Path.Combine("tb", Path.GetFileName(colaDir))));
        var directEvents = Events(PathIn("tb-direct"));
        Assert.Equal(directEvents.Where(e => e.Tag == "train/loss").Select(e => e.Value), cellEvents.Where(e => e.Tag == "train/loss").Select(e => e.Value));
        Assert.Equal((float)trained["test"]!["nll_per_token"]!.GetValue<double>(), directEvents.Single(e => e.Tag == "test/nll_per_token").Value);
        Assert.Equal((float)trained["dev"]!["nll_per_token"]!.GetValue<double>(), directEvents.Single(e => e.Tag == "dev/nll_per_token").Value);
        Assert.Equal([(2L, 2f)], directEvents.Where(e => e.Tag == "chain/knot").Select(e => (e.Step, e.Value)));
        Assert.Single(Directory.GetDirectories(PathIn("tb")));  // the zero-shot cell trains nothing

        // The zero-shot cell equals `chainlora eval`.
        var zeroDir = Path.GetDirectoryName(specs.Single(s => s.Contains("zero-shot", StringComparison.Ordinal)))!;
        (exit, output, error) = CliHarness.Run("eval", "--model", model, "--task", "lm", "--data", text, "--seed", "1", "--num-train", "8",
            "--num-eval", "4", "--json");
        Assert.True(exit == 0, error);
        var evaluated = JsonNode.Parse(output.Trim().Split('\n')[^1])!;
        Assert.True(JsonNode.DeepEquals(evaluated["test"], JsonNode.Parse(File.ReadAllText(Path.Combine(zeroDir, "result.json")))!["test"]));

        (exit, output, error) = CliHarness.Run("report", grid);
        Assert.True(exit == 0, error);
        var results = File.ReadAllText(Path.Combine(grid, "report", "results.md"));
        Assert.Contains("COLA M=2", results);
        Assert.Contains("zero-shot", results);
    }

    [Fact]
    public void Run_job_on_an_empty_spec_names_the_missing_field()
    {
        var spec = PathIn("spec.json");
        File.WriteAllText(spec, "{}");
        var (exit, _, error) = CliHarness.Run("run-job", spec);
        Assert.Equal(2, exit);
        Assert.Contains("field 'out' is required", error);
    }

    [Theory]
    [InlineData("\"tasks\": [{ \"name\": \"sst3\", \"data\": \"d\" }]", "sst3")]
    [InlineData("\"epochs\": 0", "epochs 0")]
    [InlineData("\"num_train\": -1", "num_train -1")]
    [InlineData("\"methods\": [{ \"name\": \"a\", \"kind\": \"lora\", \"ranks\": [0] }]", "rank")]
    [InlineData("\"model\": \"no/such/dir/here\"", "neither a folder nor a Hub id")]
    [InlineData("\"tasks\": [{ \"name\": \"sst2\", \"data\": \"missing\" }]", "not found")]
    public void Experiment_dry_run_refuses_cells_every_job_would_reject_and_writes_nothing(string field, string expected)
    {
        Directory.CreateDirectory(PathIn("model"));
        Directory.CreateDirectory(PathIn("d"));
        var fields = new Dictionary<string, string>
        {
            ["model"] = "\"model\": \"model\"", ["tasks"] = "\"tasks\": [{ \"name\": \"sst2\", \"data\": \"d\" }]",
            ["methods"] = "\"methods\": [{ \"name\": \"a\", \"kind\": \"lora\" }]", ["epochs"] = "\"epochs\": 1", ["num_train"] = "\"num_train\": 8",
        };
        var key = field[1..field.IndexOf('"', 1)];
        fields[key] = field;
        var config = PathIn("grid.json");
        File.WriteAllText(config, "{ \"data_root\": \".\", " + string.Join(", ", fields.Values) + " }");
        var (exit, _, error) = CliHarness.Run("experiment", "--config", config, "--out", PathIn("grid"), "--dry-run");
        Assert.Equal(2, exit);
        Assert.Contains(expected, error);
        Assert.False(Directory.Exists(Path.Combine(PathIn("grid"), "jobs")), "no spec is written for a grid that cannot run");
    }

    [Fact]
    public void A_corrupt_result_is_not_finished_status_says_why_and_experiment_computes_the_cell_again()
    {
        var model = SharedData.Require("models/stories260K");
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var config = LmGrid.Write(PathIn("grid.json"), model, text, """[{ "name": "zero-shot", "kind": "zero-shot" }]""", seeds: "[1, 2]");
        var grid = PathIn("grid");
        var (exit, output, error) = CliHarness.Run("experiment", "--config", config, "--out", grid);
        Assert.True(exit == 0, error);
        var results = Directory.GetFiles(Path.Combine(grid, "jobs"), "result.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(2, results.Count);
        var good = JsonNode.Parse(File.ReadAllText(results[0]))!;
        // Cut short, as a copy interrupted outside ChainLora's atomic writes leaves it.
        File.WriteAllText(results[0], File.ReadAllText(results[0])[..40]);

        (exit, output, _) = CliHarness.Run("experiment", "status", grid);
        Assert.Equal(1, exit);
        Assert.Matches($@"failed\s+\S+  unreadable result, `chainlora experiment` runs the cell again: {System.Text.RegularExpressions.Regex.Escape(results[0])}: ", output);
        Assert.EndsWith("1 finished, 1 failed", output.Trim());

        (exit, output, error) = CliHarness.Run("experiment", "--config", config, "--out", grid);
        Assert.True(exit == 0, error);
        Assert.Contains("2 jobs", output);
        Assert.Contains("(1 finished, 1 to run)", output);
        Assert.Contains($"runs again: {results[0]}: ", output);
        Assert.True(JsonNode.DeepEquals(good["test"], JsonNode.Parse(File.ReadAllText(results[0]))!["test"]), "the cell computed again differs");
        (exit, output, _) = CliHarness.Run("experiment", "status", grid);
        Assert.Equal(0, exit);
        Assert.Equal("2 finished", output.Trim());
    }

    [Fact]
    public void Report_leaves_out_a_corrupt_result_and_says_so()
    {
        Directory.CreateDirectory(PathIn("model"));
        Directory.CreateDirectory(PathIn("d"));
        var config = PathIn("grid.json");
        File.WriteAllText(config, """
        { "model": "model", "data_root": ".", "tasks": [{ "name": "sst2", "data": "d" }],
          "methods": [{ "name": "LoRA", "kind": "lora" }], "seeds": [0, 1] }
        """);
        var grid = PathIn("grid");
        var (exit, _, error) = CliHarness.Run("experiment", "--config", config, "--out", grid, "--dry-run");
        Assert.True(exit == 0, error);
        var jobs = Directory.GetDirectories(Path.Combine(grid, "jobs")).Order(StringComparer.Ordinal).ToList();
        File.WriteAllText(Path.Combine(jobs[0], "result.json"), """{ "dev": { "accuracy": 0.6 }, "test": { "accuracy": 0.7 } }""");
        File.WriteAllText(Path.Combine(jobs[1], "result.json"), """{ "test": { "accuracy": "high" } """);
        var skipped = new List<string>();
        Assert.Single(ChainLora.Experiments.ResultTable.Load(grid, skipped));
        Assert.Contains(jobs[1], Assert.Single(skipped));
        Assert.Throws<InvalidDataException>(() => ChainLora.Experiments.ResultTable.Load(grid));
        (exit, _, error) = CliHarness.Run("report", grid);
        Assert.True(exit == 0, error);
    }
}
