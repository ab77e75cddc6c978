using System.CommandLine;
using ChainLora.Experiments;
using ChainLora.IO;
using Spectre.Console;

namespace ChainLora.Cli.Commands;

/// <summary>`experiment` (expand and run a grid), `run-job` (one cell), `report` (tables and plots).</summary>
static class ExperimentCommands
{
    public static Command Experiment(TextWriter output)
    {
        var config = new Option<FileInfo>("--config") { Description = "Experiment grid (JSON; see experiments/)", Required = true }
            .ExistingFile();
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Output folder: jobs/<id>/ per cell and report/", DefaultValueFactory = _ => new DirectoryInfo("runs/experiment") }
            .WritableFolder();
        var jobs = new Option<int>("--jobs") { Description = "Local worker processes", DefaultValueFactory = _ => 1 }.AtLeast(1);
        var threads = new Option<int>("--threads")
        {
            Description = "Torch threads per worker (0 = the cores shared out among --jobs; fewer leave cores for other work)",
            DefaultValueFactory = _ => 0,
        }.AtLeast(0);
        var dryRun = new Option<bool>("--dry-run")
        {
            Description = "Only write the job specs (and, for slurm / k8s, the script or manifest, printed instead of submitted)",
        };
        var tensorBoard = TensorBoardOption("TensorBoard events: one run folder per cell, DIR/<job id>; `tensorboard --logdir DIR` overlays them");
        var scheduler = CommonOptions.Choice("--scheduler",
            "Who runs the cells (local: worker processes here; slurm: an sbatch job array, DIR/slurm/; k8s: an Indexed Job manifest, DIR/k8s/job.yaml)",
            Scheduler.Local);
        var partition = new Option<string>("--partition") { Description = "slurm: the partition" };
        var time = new Option<string>("--time") { Description = "slurm: time limit per cell (e.g. 2:00:00); a cell stopped by it resumes from its checkpoint when resubmitted" };
        var cpus = new Option<int>("--cpus-per-task") { Description = "slurm / k8s: cores per cell (its torch threads)", DefaultValueFactory = _ => 1 }.AtLeast(1);
        var mem = new Option<string>("--mem") { Description = "slurm: memory per cell (e.g. 8G); k8s: the pod's memory request (e.g. 8Gi)" };
        var maxParallel = new Option<int?>("--max-parallel") { Description = "slurm / k8s: at most K cells at once (the array's %K throttle, the Job's parallelism)" }
            .AtLeast(1);
        var submit = new Option<bool>("--submit") { Description = "slurm: submit the array with sbatch (otherwise only written)" };
        var image = new Option<string>("--image") { Description = "k8s: a container image with chainlora on its PATH", DefaultValueFactory = _ => new KubernetesOptions().Image };
        var claim = new Option<string>("--pvc") { Description = "k8s: the PersistentVolumeClaim holding the grid folder, mounted at its path", DefaultValueFactory = _ => new KubernetesOptions().VolumeClaim };
        var command = new Command("experiment",
            "Run a grid of tasks x methods x learning rates x seeds; finished cells (result.json) are skipped; then write the report")
        {
            config, outDir, jobs, threads, dryRun, tensorBoard, scheduler, partition, time, cpus, mem, maxParallel, submit, image, claim,
        };
        command.Subcommands.Add(Status(output));
        command.SetAction(r =>
        {
            var options = new ExperimentRecipeOptions
            {
                Config = ExperimentConfig.Load(r.GetValue(config)!.FullName),
                Out = r.GetValue(outDir)!.FullName,
                Scheduler = r.GetEnum<Scheduler>(scheduler),
                WorkerCommand = SelfCommand(),
                Jobs = r.GetValue(jobs),
                Threads = r.GetValue(threads),
                DryRun = r.GetValue(dryRun),
                TensorBoard = r.GetValue(tensorBoard)?.FullName,
                Slurm = new SlurmOptions
                {
                    Partition = r.GetValue(partition), Time = r.GetValue(time), CpusPerTask = r.GetValue(cpus), Mem = r.GetValue(mem),
                    MaxParallel = r.GetValue(maxParallel),
                },
                Submit = r.GetValue(submit),
                Kubernetes = new KubernetesOptions
                {
                    Image = r.GetValue(image)!, VolumeClaim = r.GetValue(claim)!, CpusPerTask = r.GetValue(cpus), Memory = r.GetValue(mem),
                    MaxParallel = r.GetValue(maxParallel),
                },
            }.Validate();
            var result = options.Scheduler == Scheduler.Local && !options.DryRun && !Console.IsErrorRedirected
                ? RunWithBar(options, output)
                : ExperimentRecipe.Run(options, output, Console.Error);
            if (result.Slurm is { } submission)
            {
                if (options.DryRun) output.Write(File.ReadAllText(submission.Script));
                else if (submission.JobId is null)
                    output.WriteLine($"wrote {submission.Script} ({submission.Count} array tasks); submit it with `sbatch {submission.Script}` or --submit");
                else
                    output.WriteLine($"submitted job array {submission.JobId} ({submission.Count} tasks): {submission.Script}; watch it with `chainlora experiment status {result.Dir}`");
            }
            if (result.Manifest is { } manifest)
                output.WriteLine(options.DryRun ? File.ReadAllText(manifest) : $"wrote {manifest}; run it with `kubectl apply -f {manifest}`");
            if (result.Report.Count > 0) output.WriteLine($"report: {result.Report[0]}");
            return result.Failed.Count == 0 ? 0 : 1;
        });
        return command;
    }

    /// <summary>
    /// The local grid under a progress bar on stderr, one step per cell that ends. What the recipe
    /// logs once the bar is drawn (failed cells) is held back until the bar is done, so the two do not mix.
    /// </summary>
    static ExperimentResult RunWithBar(ExperimentRecipeOptions options, TextWriter output)
    {
        ExperimentResult result = null!;
        var log = new HeldLines(output);
        try
        {
            TrainingProgress.ErrorConsole.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                // Added at the recipe's first report, when the grid is expanded and its pending cells known.
                ProgressTask? bar = null;
                result = ExperimentRecipe.Run(options, log, Console.Error, new SyncProgress<GridProgress>(p =>
                {
                    lock (log)
                    {
                        log.Hold = true;
                        bar ??= ctx.AddTask("grid", maxValue: Math.Max(1, p.Total));
                        bar.MaxValue = Math.Max(1, p.Total);   // a finished rate search adds cells
                        bar.Value = Math.Max(bar.Value, p.Done);
                        if (p.Last is { } o) bar.Description = Markup.Escape($"grid: last {o.Job.Task} {o.Job.Method} (exit {o.ExitCode})");
                    }
                }));
            });
        }
        finally
        {
            output.Write(log.Held);
        }
        return result;
    }

    /// <summary>Writes through to <paramref name="inner"/> until <see cref="Hold"/> is set, then keeps what comes in <see cref="Held"/>.</summary>
    sealed class HeldLines(TextWriter inner) : TextWriter
    {
        readonly System.Text.StringBuilder held = new();
        public bool Hold { get; set; }
        public string Held => held.ToString();
        public override System.Text.Encoding Encoding => inner.Encoding;
        public override void Write(char value) { if (Hold) held.Append(value); else inner.Write(value); }
        public override void Write(string? value) { if (Hold) held.Append(value); else inner.Write(value); }
        public override void WriteLine(string? value) { Write(value); Write(CoreNewLine); }
    }

    /// <summary>An IProgress that reports on the caller's thread, at once.</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    public static Command RunJob(TextWriter output)
    {
        var spec = new Argument<FileInfo>("spec") { Description = "A job's spec.json (written by `chainlora experiment`)" }.ExistingFile();
        var tensorBoard = TensorBoardOption("TensorBoard events into DIR/<job id> (as `experiment --tensorboard DIR` asks)");
        var command = new Command("run-job", "Run one grid cell; writes result.json beside the spec (skips if it exists)") { spec, tensorBoard };
        command.SetAction(r =>
        {
            var job = JobSpec.Load(r.GetValue(spec)!.FullName);
            output.WriteLine(JobRunner.Run(job, tensorBoardRoot: r.GetValue(tensorBoard)?.FullName) ? $"{job.Id}: done" : $"{job.Id}: already finished");
            return 0;
        });
        return command;
    }

    static Command Status(TextWriter output)
    {
        var dir = new Argument<DirectoryInfo>("dir") { Description = "An experiment folder (with jobs/)" }.ExistingFolder();
        var command = new Command("status", "What finished, what failed (with its last lines of stderr), what Slurm holds and what is left") { dir };
        command.SetAction(r =>
        {
            var gridDir = r.GetValue(dir)!.FullName;
            var cells = GridStatus.Of(gridDir);
            foreach (var cell in cells.Where(c => c.State != CellState.Finished))
                output.WriteLine($"{EnumNames.Name(cell.State),-11} {cell.Job.Id}{(cell.Detail is null ? "" : $"  {cell.Detail}")}");
            // Rows whose other seeds are planned when their rate search has finished (`experiment` again then).
            var awaiting = GridStatus.AwaitingRateSearch(gridDir, cells);
            foreach (var row in awaiting) output.WriteLine($"{"waiting",-11} {row}: its other seeds, once its rate search has finished");
            output.WriteLine(string.Join(", ", cells.GroupBy(c => c.State).OrderBy(g => g.Key).Select(g => $"{g.Count()} {EnumNames.Name(g.Key)}")
                .Concat(awaiting.Count > 0 ? [$"{awaiting.Count} row{(awaiting.Count == 1 ? "" : "s")} waiting for a rate search"] : [])));
            return cells.Any(c => c.State == CellState.Failed) ? 1 : 0;
        });
        return command;
    }

    static Option<DirectoryInfo> TensorBoardOption(string description) =>
        new Option<DirectoryInfo>("--tensorboard") { Description = description, HelpName = "DIR" }.WritableFolder();

    public static Command Report(TextWriter output)
    {
        var dir = new Argument<DirectoryInfo>("dir") { Description = "An experiment folder (with jobs/)" }.ExistingFolder();
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Where to write results.md, CSV tables and PNG plots (default DIR/report)" }
            .WritableFolder();
        var command = new Command("report", "Aggregate whatever results exist: best LR on dev, mean ± std of test over seeds; tables and plots")
        {
            dir, outDir,
        };
        command.SetAction(r =>
        {
            var root = r.GetValue(dir)!.FullName;
            var files = ExperimentRecipe.WriteReport(root, r.GetValue(outDir)?.FullName ?? Path.Combine(root, "report"), Console.Error);
            foreach (var f in files) output.WriteLine(f);
            return 0;
        });
        return command;
    }

    /// <summary>How to start this CLI again: the apphost, or `dotnet ChainLora.Cli.dll`.</summary>
    static IReadOnlyList<string> SelfCommand()
    {
        var process = Environment.ProcessPath ?? "dotnet";
        // The CLI's own apphost (the installed `chainlora`) starts itself; under `dotnet` or another
        // host (a test runner calling CliApp in-process), the CLI's assembly goes through the dotnet host.
        if (System.Reflection.Assembly.GetEntryAssembly() == typeof(CliApp).Assembly && Path.GetFileNameWithoutExtension(process) != "dotnet")
            return [process];
        var host = Path.GetFileNameWithoutExtension(process) == "dotnet" ? process
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        return [host, typeof(CliApp).Assembly.Location];
    }
}
