// The process's resident set from /proc/self/status (Linux; NaN elsewhere), and the kernel's
// reset of its high-water mark (/proc/self/clear_refs "5", Linux 4.0+), so one phase (loading a
// model, a training step) can be measured on its own.
namespace ChainLora.Runtime;

public static class ProcessMemory
{
    /// <summary>The resident set now (VmRSS), in MB.</summary>
    public static double CurrentRssMb() => StatusMb("VmRSS:");

    /// <summary>The resident-set high-water mark (VmHWM) since start or the last <see cref="ResetPeak"/>, in MB.</summary>
    public static double PeakRssMb() => StatusMb("VmHWM:");

    /// <summary>Sets the high-water mark to the current resident set; false where the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    static double StatusMb(string field)
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return double.NaN;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        return line is null ? double.NaN : long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }
}
