// `chainlora experiment status DIR`: what finished, what failed (with its last lines of stderr),
// what a scheduler still holds and what is left, read from the cells' folders (and squeue when present).
namespace ChainLora.Experiments;

public enum CellState { Finished, Failed, Running, Queued, Interrupted, Pending }

public sealed record CellStatus(JobSpec Job, CellState State, string? Detail);

public static class GridStatus
{
    public const string ExitCodeFile = "exit_code";

    public static List<CellStatus> Of(string gridDir)
    {
        var jobs = Path.Combine(gridDir, "jobs");
        if (!Directory.Exists(jobs)) throw new DirectoryNotFoundException($"{gridDir}: no jobs/ folder (write the specs with `chainlora experiment --config FILE --out {gridDir}`)");
        var queue = SlurmArray.QueueStates(gridDir);
        return [.. Directory.GetFiles(jobs, "spec.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(JobSpec.Load)
            .Select(job => Status(job, queue))];
    }

    /// <summary>
    /// The rows of the grid's last config (its experiment.json) whose seeds beyond a rate search are not among
    /// <paramref name="cells"/> (<see cref="Of"/>) yet (<see cref="Grid.AwaitingRateSearch"/>); none without an experiment.json.
    /// </summary>
    public static List<string> AwaitingRateSearch(string gridDir, IEnumerable<CellStatus> cells)
    {
        var path = Path.Combine(gridDir, "experiment.json");
        if (!File.Exists(path)) return [];
        var config = ExperimentConfig.Deserialize<ExperimentConfig>(File.ReadAllText(path), path);
        return Grid.AwaitingRateSearch(config, [.. cells.Select(c => c.Job)]);
    }

    static CellStatus Status(JobSpec job, IReadOnlyDictionary<string, string> queue)
    {
        if (job.TryReadResult(out var damaged) is not null) return new(job, CellState.Finished, null);
        if (damaged is not null) return new(job, CellState.Failed, $"unreadable result, `chainlora experiment` runs the cell again: {damaged}");
        if (queue.TryGetValue(job.SpecPath, out var slurm))
            return new(job, slurm == "running" ? CellState.Running : CellState.Queued, $"slurm: {slurm}");
        var exitFile = Path.Combine(job.Out, ExitCodeFile);
        if (File.Exists(exitFile) && File.ReadAllText(exitFile).Trim() is var code && code != "0")
        {
            var stderr = Path.Combine(job.Out, "stderr.txt");
            var tail = File.Exists(stderr) ? File.ReadAllLines(stderr).Where(l => l.Trim().Length > 0).TakeLast(3) : [];
            return new(job, CellState.Failed, $"exit {code}: {string.Join(" | ", tail)}");
        }
        var state = Training.Checkpoint.StatePath(job.Out);
        if (File.Exists(state))
        {
            var step = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(state))?["Step"];
            return new(job, CellState.Interrupted, $"resumes from step {step}");
        }
        return new(job, CellState.Pending, null);
    }
}
