using System.Diagnostics;

namespace ChainLora.Tests;

/// <summary>Runs a program to its end (chromium, bash scripts, dotnet, mount): exit code and stdout + stderr.</summary>
static class ChildProcess
{
    public static (int Exit, string Output, string Error) Run(string file, IEnumerable<string> args, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish in {(timeout ?? TimeSpan.FromMinutes(10)).TotalMinutes} minutes");
        }
        return (process.ExitCode, output.Result, error.Result);
    }
}
