using System.Diagnostics;
using System.Text.Json.Nodes;

namespace ChainLora.Tests.Experiments;

/// <summary>
/// A grid on a real single-node Slurm (Debian's slurm-wlm and munge, started as root by
/// scripts/slurm-local.sh and stopped by PID): the array's cells equal those of the local pool,
/// cell for cell, and so does the report. Skips where Slurm cannot run here.
/// </summary>
public sealed class SlurmTests : TempFolderTest
{
    static string Script()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "slurm-local.sh"))) return Path.Combine(dir.FullName, "scripts", "slurm-local.sh");
        Assert.Skip("scripts/slurm-local.sh not found above the test binaries");
        return "";
    }

    static (int Exit, string Output, string Error) Shell(params string[] args) => ChildProcess.Run("bash", args, timeout: TimeSpan.FromMinutes(2));

    static Dictionary<string, string> Results(string grid) =>
        Directory.GetFiles(Path.Combine(grid, "jobs"), "result.json", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetFileName(Path.GetDirectoryName(f))!, f => JsonNode.Parse(File.ReadAllText(f))!["test"]!.ToJsonString());

    string TinyGrid()
    {
        Directory.CreateDirectory(PathIn("model"));
        File.WriteAllText(PathIn("text.txt"), "To be, or not to be.\n");
        var config = PathIn("tiny.json");
        File.WriteAllText(config, $$"""
        { "model": "{{PathIn("model")}}", "data_root": "{{Path.GetTempPath()}}", "tasks": [{ "name": "lm", "data": "{{PathIn("text.txt")}}" }],
          "methods": [{ "name": "LoRA", "kind": "lora" }], "learning_rates": [1e-3, 3e-3], "seeds": [1, 2, 3], "epochs": 1, "num_train": 8 }
        """);
        return config;
    }

    [Fact]
    public void Dry_run_prints_the_array_script_with_the_options_and_bad_options_are_named()
    {
        var config = TinyGrid();
        var (exit, output, error) = CliHarness.Run("experiment", "--config", config, "--out", PathIn("grid"), "--scheduler", "slurm", "--dry-run",
            "--partition", "cpu", "--time", "1:00:00", "--cpus-per-task", "2", "--mem", "4G", "--max-parallel", "3");
        Assert.True(exit == 0, error);
        foreach (var line in new[] { "#SBATCH --array=0-5%3", "#SBATCH --partition=cpu", "#SBATCH --time=1:00:00", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=4G", " run-job \"$spec\"" })
            Assert.Contains(line, output);
        Assert.Equal(6, File.ReadAllLines(Assert.Single(Directory.GetFiles(PathIn(Path.Combine("grid", "slurm")), "tasks-*.txt"))).Length);

        (exit, _, error) = CliHarness.Run("experiment", "--config", config, "--out", PathIn("grid2"), "--scheduler", "slurm", "--partition", "a b");
        Assert.Equal(2, exit);
        Assert.Contains("--partition 'a b'", error);
        (exit, _, error) = CliHarness.Run("experiment", "--config", config, "--out", PathIn("grid3"), "--scheduler", "pbs");
        Assert.Equal(2, exit);
        Assert.Contains("pbs", error);
    }

    [Fact]
    public void A_grid_run_as_a_slurm_job_array_equals_the_local_pool_cell_for_cell()
    {
        var model = SharedData.Require("models/stories260K");
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var config = LmGrid.Write(PathIn("grid.json"), model, text, """
            [{ "name": "LoRA", "kind": "lora" }, { "name": "COLA M=2", "kind": "cola", "chain_length": 2, "ranks": [8, 4] }]
            """, seeds: "[1, 2]");
        var state = PathIn("slurm-state");
        var (exit, output, error) = Shell(Script(), "start", state);
        if (exit == 77) Assert.Skip(error.Trim());
        Assert.True(exit == 0, $"Slurm did not start: {error}");
        var previous = Environment.GetEnvironmentVariable("SLURM_CONF");
        try
        {
            Environment.SetEnvironmentVariable("SLURM_CONF", output.Trim().Split('=', 2)[1]);

            var local = PathIn("local");
            var clock = Stopwatch.StartNew();
            (exit, _, error) = CliHarness.Run("experiment", "--config", config, "--out", local, "--jobs", "2");
            Assert.True(exit == 0, error);
            var localSeconds = clock.Elapsed.TotalSeconds;

            var slurm = PathIn("slurm");
            clock.Restart();
            (exit, output, error) = CliHarness.Run("experiment", "--config", config, "--out", slurm, "--scheduler", "slurm", "--submit",
                "--max-parallel", "2", "--cpus-per-task", "1");
            Assert.True(exit == 0, error);
            Assert.Contains("submitted job array", output);
            var script = Assert.Single(Directory.GetFiles(Path.Combine(slurm, "slurm"), "array-*.sbatch"));
            Assert.Contains("#SBATCH --array=0-3%2", File.ReadAllText(script));
            var status = "";
            while (clock.Elapsed < TimeSpan.FromMinutes(5))
            {
                (_, status, _) = CliHarness.Run("experiment", "status", slurm);
                if (status.TrimEnd().EndsWith("4 finished", StringComparison.Ordinal)) break;
                Thread.Sleep(500);
            }
            var slurmSeconds = clock.Elapsed.TotalSeconds;
            Assert.True(status.TrimEnd().EndsWith("4 finished", StringComparison.Ordinal), $"the array did not finish: {status}");
            TestContext.Current.TestOutputHelper?.WriteLine($"4 cells: slurm array {slurmSeconds:F1} s, local --jobs 2 {localSeconds:F1} s");

            Assert.Equal(Results(local), Results(slurm));
            Assert.Equal(4, Directory.GetFiles(Path.Combine(slurm, "slurm", "logs"), "*.out").Length);
            (exit, _, error) = CliHarness.Run("report", local);
            Assert.True(exit == 0, error);
            (exit, _, error) = CliHarness.Run("report", slurm);
            Assert.True(exit == 0, error);
            Assert.Equal(File.ReadAllText(Path.Combine(local, "report", "results.md")), File.ReadAllText(Path.Combine(slurm, "report", "results.md")));

            // Nothing left to run: a re-submission submits nothing.
            (exit, output, error) = CliHarness.Run("experiment", "--config", config, "--out", slurm, "--scheduler", "slurm", "--submit");
            Assert.True(exit == 0, error);
            Assert.Contains("(4 finished, 0 to run)", output);
            Assert.Single(Directory.GetFiles(Path.Combine(slurm, "slurm"), "array-*.sbatch"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SLURM_CONF", previous);
            Shell(Script(), "stop", state);
        }
    }
}
