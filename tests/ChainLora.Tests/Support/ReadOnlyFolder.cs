namespace ChainLora.Tests;

/// <summary>
/// A folder nothing can be written into. As root (who ignores permission bits) it is a read-only
/// tmpfs the test mounts, skipping where it cannot mount; otherwise a folder without write permission.
/// </summary>
sealed class ReadOnlyFolder : IDisposable
{
    readonly bool mounted;
    public string Root { get; }

    public ReadOnlyFolder()
    {
        Root = Directory.CreateTempSubdirectory("chainlora-readonly-").FullName;
        if (OperatingSystem.IsLinux() && Environment.UserName == "root")
        {
            var (exit, _, error) = ChildProcess.Run("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", Root], timeout: TimeSpan.FromMinutes(1));
            if (exit != 0)
            {
                Directory.Delete(Root);
                Assert.Skip($"cannot mount a read-only tmpfs here: {error.Trim()}");
            }
            mounted = true;
        }
        else if (OperatingSystem.IsWindows()) Assert.Skip("a folder without write permission needs Unix permissions");
        else File.SetUnixFileMode(Root, UnixFileMode.UserRead | UnixFileMode.UserExecute);
    }

    public string PathIn(string name) => Path.Combine(Root, name);

    public void Dispose()
    {
        if (mounted) ChildProcess.Run("umount", [Root], timeout: TimeSpan.FromMinutes(1));
        else if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.Delete(Root, recursive: true);
    }
}
