using ChainLora.Experiments;

namespace ChainLora.Tests.Experiments;

/// <summary>The experiment recipe as a library caller runs it: no CLI, cells in this process.</summary>
public sealed class ExperimentRecipeTests : TempFolderTest
{
    sealed class Reports : IProgress<GridProgress>
    {
        public List<GridProgress> Seen { get; } = [];
        public void Report(GridProgress value) { lock (Seen) Seen.Add(value); }
    }

    [Fact]
    public void The_recipe_runs_a_tiny_grid_in_process_with_the_specs_the_cli_writes_and_the_cli_finds_it_finished()
    {
        var (config, grid) = (PathIn("grid.json"), PathIn("grid"));
        LmGrid.PlanTwoCells(config, grid);
        var jobs = Path.Combine(grid, "jobs");
        string[] Files() => [.. Directory.GetFiles(grid, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];
        var written = Files().ToDictionary(f => f, File.ReadAllBytes);

        var (log, notes, progress) = (new StringWriter(), new StringWriter(), new Reports());
        var result = ExperimentRecipe.Run(new ExperimentRecipeOptions { Config = ExperimentConfig.Load(config), Out = grid }, log, notes, progress,
            TestContext.Current.CancellationToken);

        // The same cells and specs as the CLI's, byte for byte; each now with its result.
        foreach (var (file, bytes) in written) Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.Equal(2, result.Specs.Count);
        Assert.Equal([.. Directory.GetDirectories(jobs).Select(Path.GetFileName).Order(StringComparer.Ordinal)],
            result.Specs.Select(s => s.Id).Order(StringComparer.Ordinal));
        Assert.All(result.Specs, s => Assert.True(s.IsFinished, s.Id));
        Assert.Empty(result.Failed);
        Assert.Equal(Path.Combine(grid, "report", "results.md"), result.Report[0]);
        Assert.True(File.Exists(result.Report[0]));
        Assert.Equal($"2 jobs in {grid}/jobs (0 finished, 2 to run)", log.ToString().Trim());
        Assert.Equal([(0, 2), (1, 2), (2, 2)], progress.Seen.Select(p => (p.Done, p.Total)).Order());
        Assert.All(progress.Seen.Where(p => p.Last is not null), p => Assert.Equal(0, p.Last!.ExitCode));

        // The CLI recognises the cells the library finished: nothing left to run.
        var (exit, output, error) = CliHarness.Run("experiment", "--config", config, "--out", grid, "--dry-run");
        Assert.True(exit == 0, error);
        Assert.Contains("(2 finished, 0 to run)", output);
        (exit, output, _) = CliHarness.Run("experiment", "status", grid);
        Assert.Equal(0, exit);
        Assert.Equal("2 finished", output.Trim());
    }

    [Theory]
    [InlineData(Scheduler.Local, "local")]
    [InlineData(Scheduler.Slurm, "slurm")]
    [InlineData(Scheduler.Kubernetes, "k8s")]
    public void Schedulers_keep_the_names_the_cli_always_took(Scheduler scheduler, string name)
    {
        Assert.Equal(name, ChainLora.IO.EnumNames.Name(scheduler));
        Assert.Equal(scheduler, ChainLora.IO.EnumNames.Parse<Scheduler>(name, "--scheduler"));
    }

    [Fact]
    public void Cells_in_this_process_run_one_at_a_time_and_slurm_needs_a_worker_command()
    {
        var config = new ExperimentConfig();
        var local = new ExperimentRecipeOptions { Config = config, Out = PathIn("g"), Jobs = 2 };
        Assert.Equal("--jobs 2 --threads 0: cells run in this process (no worker command) run one at a time on its threads",
            Assert.Throws<ArgumentException>(() => local.Validate()).Message);
        local = local with { WorkerCommand = ["chainlora"] };
        Assert.Same(local, local.Validate());
        // A dry run runs no cell: nothing to refuse.
        var dry = local with { WorkerCommand = null, DryRun = true };
        Assert.Same(dry, dry.Validate());
        var slurm = new ExperimentRecipeOptions { Config = config, Out = PathIn("g"), Scheduler = Scheduler.Slurm };
        Assert.StartsWith("slurm: the array's tasks need a worker command", Assert.Throws<ArgumentException>(() => slurm.Validate()).Message);
        Assert.Equal("--partition 'a b': expected one word without quotes or shell characters",
            Assert.Throws<ArgumentException>(() => (slurm with { WorkerCommand = ["chainlora"], Slurm = new SlurmOptions { Partition = "a b" } }).Validate()).Message);
        Assert.False(Directory.Exists(PathIn("g")));
    }
}
