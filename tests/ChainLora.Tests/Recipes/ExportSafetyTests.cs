using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ChainLora.Export;
using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Runtime;
using ChainLora.Tests.Export;

namespace ChainLora.Tests.Recipes;

/// <summary>
/// Exports that cannot destroy each other or their source: the lock on an export folder, --out
/// against the run and base model it reads, and SIGINT / SIGTERM in the middle of an export. A
/// child process is paused at a fixed point (<see cref="FaultInjection.PauseVariable"/>), so each
/// test acts inside the export's write however fast the machine is.
/// </summary>
public sealed class ExportSafetyTests : TempFolderTest
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    /// <summary>A tiny OPT under base/ and a saved 3-link chain on it under runs/x, as `train --out runs/x` leaves.</summary>
    (string Base, string Run) WriteRun()
    {
        var tokenizer = PathIn("tok");
        ExportKit.WriteTinyBpe(tokenizer);
        var baseDir = PathIn("base");
        using (var model = TinyModels.Opt(seed: 21)) MergedExport.Save(model, baseDir, tokenizer);
        var runDir = PathIn(Path.Combine("runs", "x"));
        using var pretrained = PretrainedModel.Load(baseDir);
        RunArtifacts.SaveChain(runDir, ExportKit.ThreeLinkChain(pretrained.Model), baseDir);
        File.WriteAllText(Path.Combine(runDir, "train_log.jsonl"), "{}\n");
        return (baseDir, runDir);
    }

    // 20 KB shards: the tiny OPT's merged weights take several, so a pause after the first leaves a half-full temporary folder.
    static string[] Merged(string run, string outDir) =>
        ["export", "--run", run, "--format", "merged", "--out", outDir, "--max-shard-size", "20KB"];

    /// <summary>Every file under <paramref name="dir"/> (hidden ones too) with its sha256: equal snapshots are byte-identical trees.</summary>
    static SortedDictionary<string, string> Snapshot(string dir) =>
        new(Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))), StringComparer.Ordinal);

    /// <summary>The export folder's temporary and old copies left beside it.</summary>
    static string[] Leftovers(string outDir) =>
        Directory.GetDirectories(Path.GetDirectoryName(outDir)!, $".{Path.GetFileName(outDir)}.*");

    /// <summary>Starts an export paused after its first shard; returns once it is there, its temporary folder half written.</summary>
    static Process StartPaused(string[] args, string pauseFile)
    {
        var process = CliProcess.StartSignallable(args, new Dictionary<string, string> { [FaultInjection.PauseVariable] = $"shard:{pauseFile}" });
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(pauseFile) && !process.HasExited && deadline.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(5);
        Assert.True(File.Exists(pauseFile), $"the export did not reach its first shard: {(process.HasExited ? process.StandardError.ReadToEnd() : "still running")}");
        return process;
    }

    /// <summary>The merged export in <paramref name="outDir"/> is whole: every shard its index names is there and the model loads.</summary>
    static void AssertWholeExport(string outDir)
    {
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, SafeTensors.IndexFileName)))!;
        var shards = index["weight_map"]!.AsObject().Select(e => (string)e.Value!).Distinct().ToList();
        Assert.True(shards.Count > 1, "the export was meant to be sharded");
        Assert.All(shards, s => Assert.True(File.Exists(Path.Combine(outDir, s)), $"{s} is named by the index but missing"));
        using var loaded = PretrainedModel.Load(outDir);
    }

    [Fact]
    public async Task A_second_export_into_a_folder_being_exported_fails_at_once_and_the_first_completes()
    {
        var (_, run) = WriteRun();
        var outDir = PathIn("merged");
        var pause = PathIn("paused");
        using var first = StartPaused(Merged(run, outDir), pause);
        try
        {
            var firstError = first.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = first.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);

            var (exit, _, error) = CliProcess.Run(Merged(run, outDir));

            Assert.Equal(2, exit);
            Assert.StartsWith($"error: {outDir} is in use by another export", error);
            Assert.Single(error.Trim().Split('\n'));
            File.Delete(pause);
            Assert.True(first.WaitForExit(TimeSpan.FromMinutes(2)), "the first export did not finish");
            Assert.True(first.ExitCode == 0, await firstError);
        }
        finally
        {
            if (!first.HasExited) first.Kill();
        }
        AssertWholeExport(outDir);
        Assert.Empty(Leftovers(outDir));
    }

    [Fact]
    public void An_export_folder_locked_by_another_export_is_refused_and_left_as_it_was()
    {
        var (_, run) = WriteRun();
        var outDir = PathIn("merged");
        var (exit, _, error) = CliHarness.Run(Merged(run, outDir));
        Assert.True(exit == 0, error);
        var before = Snapshot(outDir);

        using (FolderLock.AcquireBeside(outDir, "export"))
        {
            (exit, _, error) = CliHarness.Run([.. Merged(run, outDir), "--dtype", "bf16"]);
            Assert.Equal(2, exit);
            Assert.Contains($"{outDir} is in use by another export", error);
        }

        Assert.Equal(before, Snapshot(outDir));
        Assert.Empty(Leftovers(outDir));
        (exit, _, error) = CliHarness.Run([.. Merged(run, outDir), "--dtype", "bf16"]);
        Assert.True(exit == 0, error);
        Assert.NotEqual(before, Snapshot(outDir));
    }

    [Fact]
    public void Export_force_onto_a_run_folder_in_use_is_refused()
    {
        var (_, run) = WriteRun();
        var other = PathIn(Path.Combine("runs", "y"));
        using (FolderLock.Acquire(other, "train run"))
        {
            var log = Path.Combine(other, "train_log.jsonl");
            File.WriteAllText(log, "{}\n");
            var (exit, _, error) = CliHarness.Run("export", "--run", run, "--format", "peft", "--out", other, "--force");
            Assert.Equal(2, exit);
            Assert.Contains($"{other} is in use by another run", error);
            Assert.Equal("{}\n", File.ReadAllText(log));
            Assert.Equal([".lock", "train_log.jsonl"], Directory.GetFileSystemEntries(other).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
    }

    /// <summary>--out where replacing it would delete what the export reads: the folder holding the run, the run, a folder in it, the base model.</summary>
    [Theory]
    [InlineData("runs", "peft", true)]
    [InlineData("runs/x", "peft", true)]
    [InlineData("runs/x/chain", "peft", true)]
    [InlineData("runs/x/chain", "merged", false)] // chain.json and links.safetensors are files an export writes: no --force needed to lose them
    [InlineData("base", "merged", false)]         // a Hugging Face folder holds only files a merged export writes
    [InlineData(".", "peft", true)]
    public void Export_refuses_an_out_folder_that_is_holds_or_lies_inside_what_it_reads(string outName, string format, bool force)
    {
        var (_, run) = WriteRun();
        var before = Snapshot(Temp.FullName);
        var outDir = Path.GetFullPath(PathIn(outName));

        var (exit, _, error) = CliHarness.Run(["export", "--run", run, "--format", format, "--out", outDir, .. force ? ["--force"] : Array.Empty<string>()]);

        Assert.Equal(2, exit);
        Assert.Contains($"--out {outDir}", error);
        Assert.Contains(outName == "base" ? "base model" : $"--run {run}", error);
        Assert.Single(error.Trim().Split('\n'));
        Assert.Equal(before, Snapshot(Temp.FullName));
    }

    /// <summary>The same refusal when a symbolic link hides that --out and --run are one tree, on either side.</summary>
    [Fact]
    public void Export_sees_through_symbolic_links_on_both_sides()
    {
        var (_, run) = WriteRun();
        var before = Snapshot(Temp.FullName);
        var elsewhere = Directory.CreateTempSubdirectory("chainlora-links-");
        try
        {
            // --out is a link to the folder holding the run.
            var toRuns = Path.Combine(elsewhere.FullName, "all-runs");
            Directory.CreateSymbolicLink(toRuns, PathIn("runs"));
            var (exit, _, error) = CliHarness.Run("export", "--run", run, "--format", "peft", "--out", toRuns, "--force");
            Assert.Equal(2, exit);
            Assert.Contains($"--run {run}", error);

            // --run is read through a link; --out is the real chain folder behind it.
            var toRun = Path.Combine(elsewhere.FullName, "run-link");
            Directory.CreateSymbolicLink(toRun, run);
            (exit, _, error) = CliHarness.Run("export", "--run", toRun, "--format", "peft", "--out", Path.Combine(run, "chain"), "--force");
            Assert.Equal(2, exit);
            Assert.Contains($"--run {toRun}", error);

            // --out is a new folder under a link into the run.
            var inside = Path.Combine(elsewhere.FullName, "inside");
            Directory.CreateSymbolicLink(inside, Path.Combine(run, "chain"));
            (exit, _, error) = CliHarness.Run("export", "--run", run, "--format", "merged", "--out", Path.Combine(inside, "merged"));
            Assert.Equal(2, exit);
        }
        finally
        {
            elsewhere.Delete(recursive: true);
        }
        Assert.Equal(before, Snapshot(Temp.FullName));
    }

    [Theory]
    [InlineData("INT", 2)]
    [InlineData("TERM", 15)]
    public async Task A_signalled_export_stops_removes_its_temporary_and_leaves_the_previous_export(string signal, int number)
    {
        var (_, run) = WriteRun();
        var outDir = PathIn("merged");
        var (exit, _, error) = CliHarness.Run(Merged(run, outDir));
        Assert.True(exit == 0, error);
        var before = Snapshot(outDir);

        using (var process = StartPaused([.. Merged(run, outDir), "--dtype", "bf16"], PathIn("paused")))
        {
            var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.NotEmpty(Leftovers(outDir)); // its temporary folder, half written
            Assert.Equal(0, Kill(process.Id, number));
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), $"the export did not stop on SIG{signal}");
            Assert.Equal(130, process.ExitCode);
            Assert.Equal($"interrupted: export stopped; {outDir} is unchanged", (await stderr).Trim());
        }

        Assert.Equal(before, Snapshot(outDir));
        Assert.Empty(Leftovers(outDir));
    }
}
