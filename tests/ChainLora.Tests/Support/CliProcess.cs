using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ChainLora.Tests;

/// <summary>Runs the `chainlora` command line as a child process (for kills, signals and environment settings a test cannot make in-process).</summary>
static class CliProcess
{
    /// <summary>Starts the CLI with one torch thread (so two runs do the same arithmetic) and <paramref name="environment"/> added.</summary>
    public static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ChainLora.Cli.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["CHAINLORA_THREADS"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {host}");
    }

    /// <summary>Runs the CLI to its end: exit code, stdout, stderr. Past <paramref name="timeout"/> it is killed and the test fails.</summary>
    public static (int Exit, string Out, string Err) Run(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null,
        TimeSpan? timeout = null)
    {
        using var process = Start(args, environment);
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? Timeout.InfiniteTimeSpan))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"chainlora {string.Join(' ', args)} was still running after {timeout}; stderr so far: {error.Result}");
        }
        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>Sends <paramref name="signal"/> (2 SIGINT, 15 SIGTERM) to <paramref name="process"/>, as kill(1) does, at once.</summary>
    public static void Signal(Process process, int signal) => Assert.Equal(0, Kill(process.Id, signal));

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);
}
