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

    [Fact]
    public void A_rate_search_runs_its_seeds_at_every_rate_then_in_the_same_run_the_other_seeds_at_the_rate_chosen()
    {
        var config = LmGrid.Write(PathIn("search.json"), SharedData.Require("models/stories260K"), SharedData.Require("corpus/tinyshakespeare.txt"),
            """[{ "name": "LoRA", "kind": "lora", "learning_rates": [1e-5, 3e-2] }]""", seeds: "[1, 2]", extra: """, "rate_search_seeds": [1]""");
        var grid = PathIn("grid");
        // Planned only: `experiment status` says the row waits for its search.
        ExperimentRecipe.Run(new ExperimentRecipeOptions { Config = ExperimentConfig.Load(config), Out = grid, DryRun = true }, TextWriter.Null,
            cancel: TestContext.Current.CancellationToken);
        var (exit, output, _) = CliHarness.Run("experiment", "status", grid);
        Assert.Equal(0, exit);
        Assert.Contains("waiting     lm LoRA: its other seeds, once its rate search has finished", output);
        Assert.EndsWith("2 pending, 1 row waiting for a rate search", output.Trim());

        var (log, progress) = (new StringWriter(), new Reports());
        var result = ExperimentRecipe.Run(new ExperimentRecipeOptions { Config = ExperimentConfig.Load(config), Out = grid }, log, null, progress,
            TestContext.Current.CancellationToken);

        // Seed 1 ran both rates; seed 2 only the one seed 1 chose on dev (3e-2 learns, 1e-5 barely moves).
        Assert.Equal([(1e-5, 1L), (3e-2, 1L), (3e-2, 2L)], result.Specs.Select(s => (s.LearningRate, s.Seed)).Order());
        Assert.All(result.Specs, s => Assert.True(s.IsFinished, s.Id));
        Assert.Equal(3e-2, LearningRates.Choose([.. result.Specs.Where(s => s.Seed == 1).Select(s => s.TryReadResult(out _)!)]));
        Assert.Equal([$"2 jobs in {grid}/jobs (0 finished, 2 to run)", "1 row runs seed 2 at the rate chosen on seed 1 once that search has finished: lm LoRA",
            "1 more job: the seeds beyond the rate search, at each row's chosen rate"],
            log.ToString().Trim().Split('\n'));
        Assert.Equal(3, progress.Seen.Max(p => p.Done));
        Assert.Equal(3, progress.Seen.Last(p => p.Done == 3).Total);
        // The report compares the rates on seed 1 and gives the choice's test over both seeds.
        var cell = ResultTable.Summarize(ResultTable.Load(grid)).Single();
        Assert.Equal((3e-2, 2, RateBracket.TopEdge), (cell.BestLearningRate!.Value, cell.Seeds, cell.Rates!.Bracket));

        // Run again: everything is finished and nothing waits.
        log = new StringWriter();
        ExperimentRecipe.Run(new ExperimentRecipeOptions { Config = ExperimentConfig.Load(config), Out = grid, DryRun = true }, log, cancel: TestContext.Current.CancellationToken);
        Assert.Equal($"3 jobs in {grid}/jobs (3 finished, 0 to run)", log.ToString().Trim());
        (exit, output, _) = CliHarness.Run("experiment", "status", grid);
        Assert.Equal((0, "3 finished"), (exit, output.Trim()));
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
