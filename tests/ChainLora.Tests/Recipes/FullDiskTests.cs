using ChainLora.Recipes;

namespace ChainLora.Tests.Recipes;

/// <summary>
/// Writes that meet a full disk (a real tmpfs, filled up): the file or folder that was there stays
/// whole, no temporary is left behind, and the command says the disk is full. Checkpoints:
/// <see cref="ResumeAndAdapterTests"/> (a child process resumed onto a full disk).
/// </summary>
public sealed class FullDiskTests : TempFolderTest
{
    static string[] HiddenFiles(string dir) => [.. Directory.GetFileSystemEntries(dir, ".*").Select(Path.GetFileName)!];

    [Fact]
    public void A_result_file_written_onto_a_full_disk_leaves_the_previous_one_whole()
    {
        using var disk = new SmallDisk(1 << 20);
        var path = disk.PathIn("result.json");
        ResultFile.Write(path, new { status = "finished", nll = 3.25 });
        var before = File.ReadAllBytes(path);
        disk.Fill();
        var e = Assert.ThrowsAny<IOException>(() => ResultFile.Write(path, new { status = "finished", nll = 2.5, padding = new string('x', 100_000) }));
        Assert.Contains("No space left on device", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Empty(HiddenFiles(disk.Root));
    }

    [Fact]
    public void A_merged_export_onto_a_full_disk_leaves_the_previous_export_whole()
    {
        var model = SharedData.Require("models/stories260K");
        var text = SharedData.Require("corpus/tinyshakespeare.txt");
        var run = PathIn("run");
        var (exit, _, error) = CliHarness.Run("train", "--model", model, "--task", "lm", "--data", text, "--out", run, "--method", "cola",
            "--chain-length", "2", "--num-train", "4", "--num-dev", "1", "--num-eval", "2", "--epochs", "2", "--batch-size", "2", "--lr", "1e-3");
        Assert.True(exit == 0, error);

        using var disk = new SmallDisk(8 << 20);
        var export = disk.PathIn("merged");
        (exit, _, error) = CliHarness.Run("export", "--run", run, "--format", "merged", "--out", export);
        Assert.True(exit == 0, error);
        var before = Directory.GetFiles(export).Order().ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

        disk.Fill(leaveBytes: 64 << 10);
        (exit, _, error) = CliHarness.Run("export", "--run", run, "--format", "merged", "--out", export, "--force");
        Assert.Equal(1, exit);
        Assert.Contains("the disk is full", error);
        Assert.DoesNotContain("   at ", error);
        Assert.Equal(before.Keys, Directory.GetFiles(export).Order().Select(Path.GetFileName));
        foreach (var (name, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(export, name)));
        // Beside the export only its lock file, which stays by design (IO/FolderLock.AcquireBeside).
        Assert.Equal(["filler"], Directory.GetFileSystemEntries(disk.Root).Select(Path.GetFileName).Where(n => n is not ("merged" or ".merged.lock")));
    }
}
