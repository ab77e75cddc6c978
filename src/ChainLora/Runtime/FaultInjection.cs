// Test hooks for crash and signal safety.
// CHAINLORA_FAULT=<point>[:<n>] kills the process (SIGKILL, as kill -9 does: no cleanup, no finally)
// the n-th time (default: the first) it passes <point>.
// CHAINLORA_PAUSE=<point>:<file> pauses the process the first time it passes <point>: it creates
// <file> and waits until the test deletes it or the operation is cancelled (a signal), so a test can
// act at that exact moment, however fast the machine, instead of racing the process.
// Points: "knot" (between two layers of a knot), "checkpoint-write" (inside a checkpoint's or an
// export's temporary folder, written whole), "checkpoint-swap" (between moving the old checkpoint
// aside and the new one in), "backward" (gradients computed, the optimizer step not taken), "step"
// (a step taken, neither logged nor checkpointed), "shard" (a shard of a sharded safetensors save
// written, the next not yet: a merged export's temporary folder half full).
// Unset, they cost one comparison each.
using System.Diagnostics;

namespace ChainLora.Runtime;

public static class FaultInjection
{
    public const string Variable = "CHAINLORA_FAULT";
    public const string PauseVariable = "CHAINLORA_PAUSE";
    static readonly (string Point, int Count)? Armed = Parse(Environment.GetEnvironmentVariable(Variable));
    static readonly (string Point, string File)? PauseAt = ParsePause(Environment.GetEnvironmentVariable(PauseVariable));
    static int passed, paused;

    static (string, int)? Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        var parts = value.Split(':');
        return (parts[0].Trim(), parts.Length > 1 && int.TryParse(parts[1], out var n) && n > 0 ? n : 1);
    }

    static (string, string)? ParsePause(string? value) =>
        value?.Split(':', 2) is [var point, var file] && file.Length > 0 ? (point.Trim(), file) : null;

    /// <param name="cancel">Ends a pause early: what it cancels (a signal) is what the test waits to see handled.</param>
    public static void Point(string name, CancellationToken cancel = default)
    {
        if (Armed is { } armed && armed.Point == name && Interlocked.Increment(ref passed) == armed.Count)
            Process.GetCurrentProcess().Kill();
        if (PauseAt is { } pause && pause.Point == name && Interlocked.Exchange(ref paused, 1) == 0)
        {
            File.WriteAllText(pause.File, $"{Environment.ProcessId}");
            while (File.Exists(pause.File) && !cancel.WaitHandle.WaitOne(10)) { }
        }
    }
}
