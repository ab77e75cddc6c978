// A test hook for crash safety: CHAINLORA_FAULT=<point>[:<n>] kills the process (SIGKILL, as
// kill -9 does: no cleanup, no finally) the n-th time (default: the first) it passes <point>.
// Points: "knot" (between two layers of a knot), "checkpoint-write" (inside a checkpoint's
// temporary folder), "checkpoint-swap" (between moving the old checkpoint aside and the new one in),
// "backward" (gradients computed, the optimizer step not taken), "step" (a step taken, neither
// logged nor checkpointed).
// Unset, it costs one comparison.
using System.Diagnostics;

namespace ChainLora.Runtime;

public static class FaultInjection
{
    public const string Variable = "CHAINLORA_FAULT";
    static readonly (string Point, int Count)? Armed = Parse(Environment.GetEnvironmentVariable(Variable));
    static int passed;

    static (string, int)? Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        var parts = value.Split(':');
        return (parts[0].Trim(), parts.Length > 1 && int.TryParse(parts[1], out var n) && n > 0 ? n : 1);
    }

    public static void Point(string name)
    {
        if (Armed is { } armed && armed.Point == name && Interlocked.Increment(ref passed) == armed.Count)
            Process.GetCurrentProcess().Kill();
    }
}
