namespace ChainLora.Tests;

/// <summary>
/// A real small filesystem (a tmpfs mounted by the test, which needs root) that can be filled up, so
/// writes fail with the kernel's own "No space left on device". Skips the test where it cannot mount.
/// </summary>
sealed class SmallDisk : IDisposable
{
    readonly string filler;
    public string Root { get; }

    public SmallDisk(long bytes)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") Assert.Skip("mounting a small tmpfs needs root on Linux");
        Root = Directory.CreateTempSubdirectory("chainlora-smalldisk-").FullName;
        var (exit, error) = Run("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", Root);
        if (exit != 0)
        {
            Directory.Delete(Root);
            Assert.Skip($"cannot mount a tmpfs here: {error.Trim()}");
        }
        filler = Path.Combine(Root, "filler");
    }

    public string PathIn(string name) => Path.Combine(Root, name);

    /// <summary>Fills the disk until at most <paramref name="leaveBytes"/> are free.</summary>
    public void Fill(long leaveBytes = 0)
    {
        using var stream = new FileStream(filler, FileMode.Append, FileAccess.Write);
        var chunk = new byte[4096];
        try
        {
            while (new DriveInfo(Root).AvailableFreeSpace > leaveBytes + chunk.Length) stream.Write(chunk);
            stream.Flush();
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Frees what <see cref="Fill"/> took.</summary>
    public void Free() => File.Delete(filler);

    public void Dispose()
    {
        Run("umount", Root);
        Directory.Delete(Root, recursive: true);
    }

    static (int Exit, string Error) Run(string command, params string[] args)
    {
        var (exit, _, error) = ChildProcess.Run(command, args, timeout: TimeSpan.FromMinutes(1));
        return (exit, error);
    }
}
