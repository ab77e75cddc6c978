// Memory is checked before it is allocated: a model, a checkpoint or a batch that cannot fit is
// refused with its size and the memory available, instead of growing until the OOM killer ends the
// process (or libtorch fails with a C++ trace).
using System.Globalization;
using ChainLora.IO;

namespace ChainLora.Runtime;

/// <summary>More memory asked for than the budget allows; exit code 2, as for other inputs that cannot be used.</summary>
public sealed class MemoryBudgetExceededException(string message) : Exception(message);

public static class MemoryBudget
{
    /// <summary>Overrides the budget, e.g. "30GiB" (to try anyway, or to reserve memory for other work).</summary>
    public const string Variable = "CHAINLORA_MEMORY_BUDGET";

    /// <summary>
    /// Bytes this process may still allocate: <see cref="Variable"/> when set, else the kernel's
    /// MemAvailable, lowered to the cgroup's remaining limit (containers); null where neither is known.
    /// </summary>
    public static long? AvailableBytes()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } text)
        {
            try { return ByteSize.Parse(text); }
            catch (ArgumentException e) { throw new ArgumentException($"{Variable}={text}: {e.Message}", e); }
        }
        var available = MemInfoBytes("MemAvailable:");
        var limit = CgroupBytes("/sys/fs/cgroup/memory.max");
        var used = CgroupBytes("/sys/fs/cgroup/memory.current");
        if (limit is { } max && used is { } current) available = Math.Min(available ?? long.MaxValue, Math.Max(0, max - current));
        return available;
    }

    /// <summary>
    /// Throws <see cref="MemoryBudgetExceededException"/> when <paramref name="bytes"/> exceed the budget;
    /// <paramref name="what"/> names what needs them, <paramref name="advice"/> what would need less.
    /// </summary>
    public static void Require(long bytes, string what, string advice = "use a smaller model, batch or sequence, --base-dtype bf16")
    {
        if (AvailableBytes() is { } available && bytes > available)
            throw new MemoryBudgetExceededException(
                $"{what} needs {ByteSize.Format(bytes)} but {ByteSize.Format(available)} is available " +
                $"({(Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } ? Variable : "MemAvailable")}); " +
                $"{advice}, or set {Variable} to override");
    }

    static long? MemInfoBytes(string field)
    {
        const string path = "/proc/meminfo";
        if (!File.Exists(path)) return null;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>A cgroup v2 memory file: a number of bytes, or "max" (no limit: null).</summary>
    static long? CgroupBytes(string path) =>
        File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) ? bytes : null;
}
