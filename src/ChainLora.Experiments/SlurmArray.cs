// A grid handed to Slurm: one sbatch job array, one array task per pending cell, each running
// `chainlora run-job SPEC` exactly as the local pool does, so a cell's result is the same whichever
// scheduler ran it. Each submission gets its own task list and script under DIR/slurm/, so a
// re-submission (of the cells still without a result) never changes what a running array reads.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ChainLora.IO;

namespace ChainLora.Experiments;

/// <summary>sbatch settings for a grid's job array; null leaves a setting to the cluster's defaults.</summary>
public sealed record SlurmOptions
{
    public string? Partition { get; init; }
    /// <summary>Per array task, as sbatch --time takes it (e.g. 2:00:00).</summary>
    public string? Time { get; init; }
    public int CpusPerTask { get; init; } = 1;
    /// <summary>Per array task, as sbatch --mem takes it (e.g. 8G).</summary>
    public string? Mem { get; init; }
    /// <summary>At most this many array tasks at once (the %K throttle); null: no limit.</summary>
    public int? MaxParallel { get; init; }
    /// <summary>Passed to each task as `run-job --tensorboard`.</summary>
    public string? TensorBoard { get; init; }

    public SlurmOptions Validate()
    {
        if (CpusPerTask < 1) throw new ArgumentException($"--cpus-per-task {CpusPerTask}: must be at least 1");
        if (MaxParallel is < 1) throw new ArgumentException($"--max-parallel {MaxParallel}: must be at least 1");
        foreach (var (name, value) in new[] { ("--partition", Partition), ("--time", Time), ("--mem", Mem) })
            if (value is not null && (value.Length == 0 || value.Any(c => char.IsWhiteSpace(c) || c is '\'' or '"' or '\\' or '$' or '`')))
                throw new ArgumentException($"{name} '{value}': expected one word without quotes or shell characters");
        return this;
    }
}

/// <summary>One submission: its script, its task list (array index i runs line i + 1) and, once submitted, Slurm's job id.</summary>
public sealed record SlurmSubmission(string Script, string Tasks, int Count, string? JobId = null);

public static class SlurmArray
{
    public const string FolderName = "slurm";
    const string SubmissionsFile = "submissions.jsonl";

    /// <summary>
    /// Writes the array script and task list for <paramref name="pending"/> (cells without a result) into
    /// <paramref name="gridDir"/>/slurm/; <paramref name="command"/> starts the CLI (e.g. ["chainlora"]).
    /// </summary>
    public static SlurmSubmission Write(string gridDir, IReadOnlyList<JobSpec> pending, IReadOnlyList<string> command, SlurmOptions options)
    {
        options.Validate();
        if (pending.Count == 0) throw new ArgumentException($"{gridDir}: every cell has a result; nothing to submit");
        var dir = Path.Combine(Path.GetFullPath(gridDir), FolderName);
        Directory.CreateDirectory(Path.Combine(dir, "logs"));
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss-fff", CultureInfo.InvariantCulture);
        var tasks = Path.Combine(dir, $"tasks-{stamp}.txt");
        AtomicFile.WriteAllLines(tasks, pending.Select(j => j.SpecPath));
        var script = Path.Combine(dir, $"array-{stamp}.sbatch");
        AtomicFile.WriteAllText(script, Script(gridDir, tasks, pending.Count, command, options));
        return new SlurmSubmission(script, tasks, pending.Count);
    }

    /// <summary>The sbatch script: each array task runs run-job on its line of <paramref name="tasks"/>.</summary>
    public static string Script(string gridDir, string tasks, int count, IReadOnlyList<string> command, SlurmOptions o)
    {
        var logs = Path.Combine(Path.GetFullPath(gridDir), FolderName, "logs");
        var sb = new StringBuilder("#!/bin/bash\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --job-name=chainlora-{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(gridDir)))}\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --array=0-{count - 1}{(o.MaxParallel is { } k ? $"%{k}" : "")}\n");
        sb.Append(CultureInfo.InvariantCulture, $"#SBATCH --cpus-per-task={o.CpusPerTask}\n");
        if (o.Partition is not null) sb.Append($"#SBATCH --partition={o.Partition}\n");
        if (o.Time is not null) sb.Append($"#SBATCH --time={o.Time}\n");
        if (o.Mem is not null) sb.Append($"#SBATCH --mem={o.Mem}\n");
        sb.Append($"#SBATCH --output={logs}/%A_%a.out\n");
        sb.Append("set -uo pipefail\n");
        sb.Append($"spec=\"$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {Quote(tasks)})\"\n");
        sb.Append("cell=\"$(dirname \"$spec\")\"\n");
        sb.Append("export CHAINLORA_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
        sb.Append("echo \"array task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID: $spec\"\n");
        var run = string.Join(" ", command.Select(Quote)) + " run-job \"$spec\"" + (o.TensorBoard is null ? "" : $" --tensorboard {Quote(o.TensorBoard)}");
        // The cell's own stderr.txt and exit_code, as the local pool writes them: `experiment status` reads both.
        sb.Append($"{run} 2> \"$cell/stderr.txt\"\n");
        sb.Append("status=$?\necho \"$status\" > \"$cell/exit_code\"\nexit \"$status\"\n");
        return sb.ToString();
    }

    /// <summary>Runs sbatch on <paramref name="submission"/>'s script; records and returns Slurm's job id.</summary>
    public static SlurmSubmission Submit(string gridDir, SlurmSubmission submission)
    {
        var (exit, output, error) = Run("sbatch", "--parsable", submission.Script);
        if (exit != 0) throw new InvalidOperationException($"sbatch {submission.Script} failed (exit {exit}): {error.Trim()}");
        var submitted = submission with { JobId = output.Trim().Split(';')[0] };
        var record = Path.Combine(gridDir, FolderName, SubmissionsFile);
        File.AppendAllText(record, JsonSerializer.Serialize(new { job_id = submitted.JobId, tasks = submitted.Tasks, script = submitted.Script, count = submitted.Count }) + "\n");
        return submitted;
    }

    /// <summary>Slurm's state of each cell still queued or running (by spec path), from squeue; empty without squeue or submissions.</summary>
    public static Dictionary<string, string> QueueStates(string gridDir)
    {
        var states = new Dictionary<string, string>(StringComparer.Ordinal);
        var record = Path.Combine(gridDir, FolderName, SubmissionsFile);
        if (!File.Exists(record)) return states;
        var submissions = File.ReadLines(record).Where(l => l.Trim().Length > 0).Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => e.GetProperty("job_id").GetString()!, e => e.GetProperty("tasks").GetString()!);
        (int, string, string) queue;
        try { queue = Run("squeue", "-h", "-r", "-j", string.Join(",", submissions.Keys), "-o", "%i %T"); }
        catch (System.ComponentModel.Win32Exception) { return states; } // no squeue on this machine
        if (queue.Item1 != 0) return states;
        foreach (var line in queue.Item2.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var id = parts[0].Split('_');
            if (parts.Length < 2 || id.Length < 2 || !submissions.TryGetValue(id[0], out var tasks) || !int.TryParse(id[1], out var index)) continue;
            var spec = File.ReadLines(tasks).Skip(index).FirstOrDefault();
            if (spec is not null) states[spec] = parts[1].ToLowerInvariant();
        }
        return states;
    }

    static string Quote(string s) => $"'{s.Replace("'", "'\\''")}'";

    static (int Exit, string Output, string Error) Run(string command, params string[] args)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {command}");
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }
}
