using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ChainLora.Tests;

/// <summary>Runs the `chainlora` command line as a child process (for kills, signals and environment settings a test cannot make in-process).</summary>
static class CliProcess
{
    /// <summary>
    /// A prefix that starts a program with SIGINT at its default disposition. A test run started from a
    /// background job or under nohup ignores SIGINT; exec keeps an ignored signal ignored, and .NET then
    /// installs no SIGINT handler (as Unix programs leave an inherited ignore alone), so a child started
    /// plainly never sees the test's SIGINT. `sh -c 'trap - INT; exec ...'` cannot help: a
    /// non-interactive shell may not reset a signal ignored at entry (POSIX; dash and bash both keep it).
    /// </summary>
    public static readonly string[] DefaultSigint = ["/usr/bin/env", "--default-signal=INT"];

    /// <summary>Starts the CLI with one torch thread (so two runs do the same arithmetic) and <paramref name="environment"/> added.</summary>
    public static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) =>
        Start([], args, environment);

    /// <summary>
    /// Starts the CLI as <see cref="Start(IEnumerable{string}, IReadOnlyDictionary{string, string}?)"/> does,
    /// with SIGINT at its default whatever this process inherited (see <see cref="DefaultSigint"/>), for tests
    /// that signal it; skipped, with the reason, where SIGINT is ignored here and `env` cannot reset it.
    /// </summary>
    public static Process StartSignallable(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (EnvResetsSignals.Value) return Start(DefaultSigint, args, environment);
        if (IgnoresSigint(Environment.ProcessId))
            Assert.Skip("SIGINT is ignored by this test process (started from a background job or under nohup) " +
                "and this system's env has no --default-signal to give the child SIGINT's default");
        return Start(args, environment);
    }

    /// <summary>Whether process <paramref name="pid"/> ignores SIGINT (bit 2 - 1 of SigIgn in /proc/PID/status).</summary>
    public static bool IgnoresSigint(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 0b10) != 0;
    }

    static readonly Lazy<bool> EnvResetsSignals = new(() =>
        File.Exists(DefaultSigint[0]) && ChildProcess.Run(DefaultSigint[0], [.. DefaultSigint[1..], "true"]).Exit == 0);

    static Process Start(string[] prefix, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        // The prefix execs the host, so the process keeps its id: signals sent to it reach the CLI.
        var info = new ProcessStartInfo(prefix is [var wrapper, ..] ? wrapper : host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in prefix.Skip(1)) info.ArgumentList.Add(a);
        if (prefix.Length > 0) info.ArgumentList.Add(host);
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ChainLora.Cli.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["CHAINLORA_THREADS"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {info.FileName}");
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

    /// <summary>
    /// Sends <paramref name="signal"/> (2 SIGINT, 15 SIGTERM) to <paramref name="process"/>, as kill(1) does, at
    /// once. A SIGINT to a child that ignores it (started with Start under a test run that ignores SIGINT)
    /// fails here, naming the cause, instead of as a child that never stops.
    /// </summary>
    public static void Signal(Process process, int signal)
    {
        if (signal == 2 && IgnoresSigint(process.Id))
            Assert.Fail($"process {process.Id} ignores SIGINT, inherited from this test run: start it with {nameof(StartSignallable)}");
        Assert.Equal(0, Kill(process.Id, signal));
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);
}
