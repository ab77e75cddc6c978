// Runs job specs as child processes (`chainlora run-job SPEC`), N at a time, seed by seed. Finished
// jobs (a readable result.json, JobSpec.IsFinished) are skipped and interrupted ones continue from their checkpoint, so
// re-running a grid resumes it.
using System.Diagnostics;

namespace ChainLora.Experiments;

public sealed record JobOutcome(JobSpec Job, int ExitCode, string ErrorTail);

public static class LocalRunner
{
    /// <summary>
    /// <paramref name="command"/> is how to start the CLI (e.g. ["dotnet", ".../ChainLora.Cli.dll"]).
    /// <paramref name="onDone"/> is called as each job ends. <paramref name="tensorBoard"/> is passed to
    /// each worker as `run-job --tensorboard`.
    /// </summary>
    public static List<JobOutcome> Run(IReadOnlyList<JobSpec> jobs, IReadOnlyList<string> command, int workers,
        Action<JobOutcome>? onDone = null, CancellationToken cancel = default, int threadsPerWorker = 0, string? tensorBoard = null)
    {
        if (workers < 1) throw new ArgumentException($"--jobs {workers}: must be at least 1");
        if (threadsPerWorker < 0) throw new ArgumentException($"--threads {threadsPerWorker}: must be >= 0 (0 = the cores shared out)");
        var threadsEach = threadsPerWorker > 0 ? threadsPerWorker : Math.Max(1, Environment.ProcessorCount / workers);
        // Seed by seed: a grid stopped part-way has compared every method on its first seeds.
        var pending = new Queue<JobSpec>(jobs.Where(j => !j.IsFinished).OrderBy(j => j.Seed));
        var outcomes = new List<JobOutcome>();
        var gate = new object();
        var threads = Enumerable.Range(0, Math.Min(workers, Math.Max(1, pending.Count))).Select(_ => new Thread(() =>
        {
            while (!cancel.IsCancellationRequested)
            {
                JobSpec job;
                lock (gate)
                {
                    if (pending.Count == 0) return;
                    job = pending.Dequeue();
                }
                var outcome = RunOne(job, command, threadsEach, tensorBoard);
                lock (gate) outcomes.Add(outcome);
                onDone?.Invoke(outcome);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return outcomes;
    }

    static JobOutcome RunOne(JobSpec job, IReadOnlyList<string> command, int threads, string? tensorBoard)
    {
        var spec = job.SpecPath;
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in command.Skip(1)) info.ArgumentList.Add(a);
        info.ArgumentList.Add("run-job");
        info.ArgumentList.Add(spec);
        if (tensorBoard is not null)
        {
            info.ArgumentList.Add("--tensorboard");
            info.ArgumentList.Add(tensorBoard);
        }
        // Share the cores between the workers instead of oversubscribing them.
        info.Environment["CHAINLORA_THREADS"] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {command[0]}");
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var tail = stderr.Result.Length > 2000 ? stderr.Result[^2000..] : stderr.Result;
        File.WriteAllText(Path.Combine(job.Out, "stderr.txt"), stderr.Result);
        File.WriteAllText(Path.Combine(job.Out, GridStatus.ExitCodeFile), $"{process.ExitCode}\n");
        return new JobOutcome(job, process.ExitCode, tail.Trim());
    }
}
