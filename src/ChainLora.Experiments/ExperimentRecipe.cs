// A grid run end to end (`chainlora experiment`): expand the config into cells, check every cell as
// run-job would, write the specs, then hand the cells without a result to a scheduler and, for the
// local one, write the report when they end. With a rate search (ExperimentConfig.RateSearchSeeds) a
// local run plans again as cells end: each row whose search has finished adds its other seeds at the
// rate chosen, and those run in the same call; other schedulers get the cells plannable now.
using System.Text.Json.Serialization;
using ChainLora.IO;
using ChainLora.Training;

namespace ChainLora.Experiments;

/// <summary>Who runs a grid's cells.</summary>
public enum Scheduler
{
    /// <summary>Worker processes on this machine (or, without a worker command, this process).</summary>
    Local,
    /// <summary>An sbatch job array (DIR/slurm/).</summary>
    Slurm,
    /// <summary>A Kubernetes Indexed Job manifest (DIR/k8s/job.yaml).</summary>
    [JsonStringEnumMemberName("k8s")]
    Kubernetes,
}

public sealed record ExperimentRecipeOptions
{
    public required ExperimentConfig Config { get; init; }
    /// <summary>The grid folder: jobs/&lt;id&gt;/ per cell, report/.</summary>
    public required string Out { get; init; }
    public Scheduler Scheduler { get; init; }
    /// <summary>
    /// How to start the CLI (e.g. ["dotnet", ".../ChainLora.Cli.dll"]): local workers and Slurm's array
    /// tasks run `run-job SPEC` with it. Null runs local cells in this process, one at a time.
    /// </summary>
    public IReadOnlyList<string>? WorkerCommand { get; init; }
    /// <summary>Local: worker processes at once.</summary>
    public int Jobs { get; init; } = 1;
    /// <summary>Local: torch threads per worker; 0 shares the cores out among <see cref="Jobs"/>.</summary>
    public int Threads { get; init; }
    /// <summary>Only write the specs (Slurm, Kubernetes: and the script or manifest; nothing submitted).</summary>
    public bool DryRun { get; init; }
    /// <summary>TensorBoard events, one run folder per cell: DIR/&lt;job id&gt;.</summary>
    public string? TensorBoard { get; init; }
    /// <summary>Slurm: the array's settings (its TensorBoard is <see cref="TensorBoard"/>).</summary>
    public SlurmOptions Slurm { get; init; } = new();
    /// <summary>Slurm: submit the array with sbatch (otherwise only written).</summary>
    public bool Submit { get; init; }
    /// <summary>Kubernetes: the Job's settings (its TensorBoard is <see cref="TensorBoard"/>).</summary>
    public KubernetesOptions Kubernetes { get; init; } = new();

    /// <summary>The settings checked before anything is written; the error names the value.</summary>
    public ExperimentRecipeOptions Validate()
    {
        if (Jobs < 1) throw new ArgumentException($"--jobs {Jobs}: must be at least 1");
        if (Threads < 0) throw new ArgumentException($"--threads {Threads}: must be >= 0 (0 = the cores shared out)");
        if (Scheduler == Scheduler.Local && WorkerCommand is null && !DryRun && (Jobs > 1 || Threads > 0))
            throw new ArgumentException($"--jobs {Jobs} --threads {Threads}: cells run in this process (no worker command) run one at a time on its threads");
        if (Scheduler == Scheduler.Slurm)
        {
            Slurm.Validate();
            if (WorkerCommand is null) throw new ArgumentException("slurm: the array's tasks need a worker command (how to start chainlora)");
        }
        return this;
    }
}

/// <summary>
/// What an experiment did: the cells (<see cref="Specs"/>, with those a finished rate search added during a
/// local run) and how many had a result before it; then,
/// by scheduler, the Slurm submission, the Kubernetes manifest, or the local cells that failed and
/// the report's files (null and empty when nothing ran: a dry run, or nothing pending for Slurm or Kubernetes).
/// </summary>
public sealed record ExperimentResult(string Dir, IReadOnlyList<JobSpec> Specs, int Finished, Scheduler Scheduler, bool DryRun,
    SlurmSubmission? Slurm, string? Manifest, IReadOnlyList<JobOutcome> Failed, IReadOnlyList<string> Report)
{
    public int Pending => Specs.Count - Finished;
}

/// <summary>
/// A local grid's progress: <see cref="Done"/> of the <see cref="Total"/> cells that were to run have ended,
/// <see cref="Last"/> the latest (null in the first report, made before any cell starts). The total grows when a
/// finished rate search adds its row's other seeds.
/// </summary>
public sealed record GridProgress(int Done, int Total, JobOutcome? Last);

public static class ExperimentRecipe
{
    /// <summary>
    /// Runs the grid of <see cref="ExperimentRecipeOptions.Config"/> in <see cref="ExperimentRecipeOptions.Out"/>.
    /// <paramref name="log"/> gets, as they happen, the grid's size, each cell that runs again (its
    /// damaged result named) and each local cell that failed; <paramref name="notes"/> what the report
    /// skipped or warns of. <paramref name="progress"/> hears when local cells start running and as each ends.
    /// </summary>
    public static ExperimentResult Run(ExperimentRecipeOptions options, TextWriter log, TextWriter? notes = null,
        IProgress<GridProgress>? progress = null, CancellationToken cancel = default)
    {
        options.Validate();
        var dir = Path.GetFullPath(options.Out);
        var specs = Plan(options.Config, dir);
        AtomicFile.WriteAllText(Path.Combine(dir, "experiment.json"), ExperimentConfig.Serialize(options.Config));
        var pending = specs.Where(s => !s.IsFinished).ToList();
        var finished = specs.Count - pending.Count;
        log.WriteLine($"{specs.Count} jobs in {dir}/jobs ({finished} finished, {pending.Count} to run)");
        LogPending(pending, log);
        LogAwaiting(options.Config, specs, log, runsOn: options.Scheduler == Scheduler.Local && !options.DryRun);
        var result = new ExperimentResult(dir, specs, finished, options.Scheduler, options.DryRun, null, null, [], []);
        switch (options.Scheduler)
        {
            case Scheduler.Slurm:
                if (pending.Count == 0) return result;
                var submission = SlurmArray.Write(dir, pending, options.WorkerCommand!, options.Slurm with { TensorBoard = options.TensorBoard });
                if (!options.DryRun && options.Submit) submission = SlurmArray.Submit(dir, submission);
                return result with { Slurm = submission };
            case Scheduler.Kubernetes:
                if (pending.Count == 0) return result;
                return result with { Manifest = KubernetesJob.Write(dir, pending, options.Kubernetes with { TensorBoard = options.TensorBoard }) };
        }
        if (options.DryRun) return result;

        var failed = new List<JobOutcome>();
        var done = 0;
        var total = pending.Count;
        void Done(JobOutcome o)
        {
            if (o.ExitCode != 0) lock (failed) failed.Add(o);
            progress?.Report(new GridProgress(Interlocked.Increment(ref done), total, o));
        }
        progress?.Report(new GridProgress(0, total, null));
        while (pending.Count > 0)
        {
            if (options.WorkerCommand is { } command)
                LocalRunner.Run(pending, command, options.Jobs, Done, cancel, options.Threads, options.TensorBoard);
            else
                // Seed by seed, as the worker pool takes them.
                foreach (var spec in pending.OrderBy(s => s.Seed))
                {
                    cancel.ThrowIfCancellationRequested();
                    Done(RunInProcess(spec, options.TensorBoard));
                }
            if (cancel.IsCancellationRequested) break;
            // A rate search that has finished plans its row's other seeds at the rate it chose: run those too.
            var known = specs.Select(s => s.Id).ToHashSet();
            specs = Plan(options.Config, dir);
            pending = specs.Where(s => !known.Contains(s.Id) && !s.IsFinished).ToList();
            if (pending.Count == 0) break;
            total += pending.Count;
            log.WriteLine($"{pending.Count} more job{(pending.Count == 1 ? "" : "s")}: the seeds beyond the rate search, at each row's chosen rate");
            LogPending(pending, log);
        }
        foreach (var f in failed)
            log.WriteLine($"job {f.Job.Id} failed (exit {f.ExitCode}): {f.ErrorTail.Split('\n').LastOrDefault()}");
        LogAwaiting(options.Config, specs, log, runsOn: false);
        return result with { Specs = specs, Failed = failed, Report = WriteReport(dir, Path.Combine(dir, "report"), notes) };
    }

    /// <summary>The cells that can be planned now, each checked as run-job would check it before any spec is written; then their specs.</summary>
    static List<JobSpec> Plan(ExperimentConfig config, string dir)
    {
        var specs = Grid.Expand(config, dir);
        foreach (var spec in specs) JobRunner.Check(spec);
        Grid.WriteSpecs(specs);
        return specs;
    }

    static void LogPending(IEnumerable<JobSpec> pending, TextWriter log)
    {
        foreach (var spec in pending)
            if (spec.TryReadResult(out var damaged) is null && damaged is not null) log.WriteLine($"job {spec.Id} runs again: {damaged}");
    }

    /// <summary>Says which rows still wait for their rate search before their other seeds can be planned.</summary>
    static void LogAwaiting(ExperimentConfig config, IReadOnlyList<JobSpec> specs, TextWriter log, bool runsOn)
    {
        var awaiting = Grid.AwaitingRateSearch(config, specs);
        if (awaiting.Count == 0) return;
        static string Seeds(IEnumerable<long> seeds) => (seeds.Count() == 1 ? "seed " : "seeds ") + string.Join(", ", seeds);
        log.WriteLine($"{awaiting.Count} row{(awaiting.Count == 1 ? "" : "s")} run{(awaiting.Count == 1 ? "s" : "")} {Seeds(config.Seeds.Except(config.RateSearchSeeds!))} " +
            $"at the rate chosen on {Seeds(config.RateSearchSeeds!)} once that search has finished" +
            (runsOn ? "" : " (run the experiment again when `experiment status` shows no cell queued or running)") + $": {string.Join("; ", awaiting)}");
    }

    /// <summary>
    /// Tables and plots of whatever results <paramref name="dir"/> holds into <paramref name="outDir"/>;
    /// results it cannot read and learning-rate warnings go to <paramref name="notes"/>. Returns the files, results.md first.
    /// </summary>
    public static List<string> WriteReport(string dir, string outDir, TextWriter? notes = null)
    {
        var skipped = new List<string>();
        var results = ResultTable.Load(dir, skipped);
        foreach (var s in skipped) notes?.WriteLine($"skipped {s}");
        if (results.Count == 0) throw new InvalidDataException($"{dir}: no finished jobs (no jobs/*/result.json) to report");
        var cells = ResultTable.Summarize(results, ResultTable.Planned(dir));
        foreach (var warning in LearningRates.Warnings(cells)) notes?.WriteLine(warning);
        return Reports.Write(cells, outDir);
    }

    /// <summary>
    /// One cell through <see cref="JobRunner"/> in this process, ended as a worker's would be: exit 0,
    /// 3 when training diverged, 1 on another failure (its message as the error tail, in stderr.txt).
    /// </summary>
    static JobOutcome RunInProcess(JobSpec spec, string? tensorBoard)
    {
        var (exit, error) = (0, "");
        try
        {
            JobRunner.Run(spec, tensorBoardRoot: tensorBoard);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            (exit, error) = (e is TrainingDivergedException ? 3 : 1, $"error: {e.Message}");
        }
        Directory.CreateDirectory(spec.Out);
        File.WriteAllText(Path.Combine(spec.Out, "stderr.txt"), error);
        File.WriteAllText(Path.Combine(spec.Out, GridStatus.ExitCodeFile), $"{exit}\n");
        return new JobOutcome(spec, exit, error);
    }
}
