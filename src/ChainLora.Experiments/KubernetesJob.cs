// A grid as a Kubernetes Indexed Job (completionMode: Indexed): pod i runs `chainlora run-job` on
// line i + 1 of the task list, with the grid's folder mounted from a PersistentVolumeClaim at the
// same path, so the specs' absolute paths hold inside the pods.
using System.Globalization;
using System.Text;
using ChainLora.IO;

namespace ChainLora.Experiments;

public sealed record KubernetesOptions
{
    /// <summary>A container image with the `chainlora` tool on its PATH.</summary>
    public string Image { get; init; } = "chainlora:latest";
    /// <summary>The PersistentVolumeClaim that holds the grid folder (and the model and data it names).</summary>
    public string VolumeClaim { get; init; } = "chainlora-runs";
    public int CpusPerTask { get; init; } = 1;
    /// <summary>Memory per pod, as Kubernetes writes it (e.g. 8Gi); null requests none.</summary>
    public string? Memory { get; init; }
    public int? MaxParallel { get; init; }
    public string? TensorBoard { get; init; }
}

public static class KubernetesJob
{
    public const string FolderName = "k8s";

    /// <summary>Writes DIR/k8s/tasks.txt and DIR/k8s/job.yaml for <paramref name="pending"/>; returns the manifest's path.</summary>
    public static string Write(string gridDir, IReadOnlyList<JobSpec> pending, KubernetesOptions options)
    {
        if (pending.Count == 0) throw new ArgumentException($"{gridDir}: every cell has a result; nothing to run");
        if (options.CpusPerTask < 1) throw new ArgumentException($"--cpus-per-task {options.CpusPerTask}: must be at least 1");
        if (options.MaxParallel is < 1) throw new ArgumentException($"--max-parallel {options.MaxParallel}: must be at least 1");
        var grid = Path.TrimEndingDirectorySeparator(Path.GetFullPath(gridDir));
        var dir = Path.Combine(grid, FolderName);
        Directory.CreateDirectory(dir);
        var tasks = Path.Combine(dir, "tasks.txt");
        AtomicFile.WriteAllLines(tasks, pending.Select(j => j.SpecPath));
        var manifest = Path.Combine(dir, "job.yaml");
        AtomicFile.WriteAllText(manifest, Manifest(grid, tasks, pending.Count, options));
        return manifest;
    }

    /// <summary>A DNS-1123 name (lower-case letters, digits and '-', at most 52 characters) from the grid folder's name.</summary>
    static string Name(string grid)
    {
        var name = new string([.. Path.GetFileName(grid).ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]).Trim('-');
        var full = $"chainlora-{(name.Length == 0 ? "grid" : name)}";
        return full.Length > 52 ? full[..52].TrimEnd('-') : full;
    }

    static string Json(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    public static string Manifest(string grid, string tasks, int count, KubernetesOptions o)
    {
        var run = $"spec=\"$(sed -n \"$((JOB_COMPLETION_INDEX + 1))p\" '{tasks}')\" && exec chainlora run-job \"$spec\""
            + (o.TensorBoard is null ? "" : $" --tensorboard '{o.TensorBoard}'");
        var sb = new StringBuilder();
        sb.Append("apiVersion: batch/v1\nkind: Job\nmetadata:\n");
        sb.Append($"  name: {Name(grid)}\n");
        sb.Append("  labels:\n    app.kubernetes.io/name: chainlora\n");
        sb.Append("spec:\n  completionMode: Indexed\n");
        sb.Append(CultureInfo.InvariantCulture, $"  completions: {count}\n  parallelism: {o.MaxParallel ?? count}\n");
        sb.Append("  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: run-job\n");
        sb.Append($"          image: {Json(o.Image)}\n");
        sb.Append($"          command: [\"/bin/sh\", \"-c\", {Json(run)}]\n");
        sb.Append(CultureInfo.InvariantCulture, $"          env:\n            - name: CHAINLORA_THREADS\n              value: \"{o.CpusPerTask}\"\n");
        sb.Append(CultureInfo.InvariantCulture, $"          resources:\n            requests:\n              cpu: \"{o.CpusPerTask}\"\n");
        if (o.Memory is not null) sb.Append($"              memory: {Json(o.Memory)}\n");
        sb.Append($"          volumeMounts:\n            - name: runs\n              mountPath: {Json(grid)}\n");
        sb.Append($"      volumes:\n        - name: runs\n          persistentVolumeClaim:\n            claimName: {Json(o.VolumeClaim)}\n");
        return sb.ToString();
    }
}
