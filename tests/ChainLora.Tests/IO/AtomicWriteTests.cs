using ChainLora.IO;

namespace ChainLora.Tests.IO;

/// <summary>The one atomic file write and the one atomic folder swap: all or nothing, no leftovers.</summary>
public sealed class AtomicWriteTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("chainlora-atomic-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void A_failed_file_write_keeps_the_old_file_and_leaves_no_temporary()
    {
        var path = Path.Combine(dir, "result.json");
        AtomicFile.WriteAllText(path, "old");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write("half"u8);
            throw new IOException("disk full");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(dir));
        AtomicFile.WriteAllLines(path, ["a", "b"]);
        Assert.Equal(["a", "b"], File.ReadAllLines(path));
    }

    [Fact]
    public void A_failed_folder_write_keeps_the_old_folder_and_leaves_no_temporary()
    {
        var target = Path.Combine(dir, "checkpoint");
        AtomicFolder.Replace(target, temp => File.WriteAllText(Path.Combine(temp, "state.json"), "1"));
        Assert.Throws<IOException>(() => AtomicFolder.Replace(target, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "state.json"), "2");
            throw new IOException("disk full");
        }));
        Assert.Equal("1", File.ReadAllText(Path.Combine(target, "state.json")));
        Assert.Equal([target], Directory.GetDirectories(dir));

        AtomicFolder.Replace(target, temp => File.WriteAllText(Path.Combine(temp, "weights"), "new"));
        Assert.Equal(["weights"], Directory.GetFiles(target).Select(Path.GetFileName));
        Assert.Equal([target], Directory.GetDirectories(dir));
    }

    /// <summary>
    /// A temporary or old copy belongs to the process named in it: one still running may be writing
    /// it (another export into the same folder), so only a dead writer's copies are cleared.
    /// </summary>
    [Fact]
    public void A_swap_clears_the_copies_of_dead_writers_and_keeps_those_of_live_ones()
    {
        var target = Path.Combine(dir, "export");
        using var live = System.Diagnostics.Process.Start("sleep", "60");
        try
        {
            int dead;
            using (var ended = System.Diagnostics.Process.Start("true"))
            {
                ended.WaitForExit();
                dead = ended.Id;
            }
            string[] liveCopies = [Path.Combine(dir, $".export.tmp-{live.Id}"), Path.Combine(dir, $".export.old-{live.Id}")];
            string[] deadCopies = [Path.Combine(dir, $".export.tmp-{dead}"), Path.Combine(dir, $".export.old-{dead}"), Path.Combine(dir, $".export.tmp-{Environment.ProcessId}")];
            AtomicFolder.Replace(target, temp => File.WriteAllText(Path.Combine(temp, "a"), "1"));
            foreach (var copy in liveCopies.Concat(deadCopies))
            {
                Directory.CreateDirectory(copy);
                File.WriteAllText(Path.Combine(copy, "shard"), "half");
            }

            AtomicFolder.Replace(target, temp => File.WriteAllText(Path.Combine(temp, "a"), "2"));

            Assert.Equal("2", File.ReadAllText(Path.Combine(target, "a")));
            Assert.All(liveCopies, copy => Assert.Equal("half", File.ReadAllText(Path.Combine(copy, "shard"))));
            Assert.All(deadCopies, copy => Assert.False(Directory.Exists(copy), copy));
        }
        finally
        {
            live.Kill();
        }
    }
}
