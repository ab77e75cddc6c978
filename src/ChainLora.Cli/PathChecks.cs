namespace ChainLora.Cli;

/// <summary>
/// What is wrong with a path an option names, or null: checked while parsing, so a file where a
/// folder is wanted (or the reverse) or a folder that cannot be written is one line naming the
/// option, not an IOException from deep inside a run. Nothing is created: writability is probed
/// with a hidden file that is deleted on close.
/// </summary>
static class PathChecks
{
    public static string? Existing(string path) =>
        File.Exists(path) || Directory.Exists(path) ? null : "not found";

    public static string? ExistingFolder(string path) =>
        Directory.Exists(path) ? null : File.Exists(path) ? "is a file; expected a folder" : "folder not found";

    public static string? ExistingFile(string path) =>
        File.Exists(path) ? null : Directory.Exists(path) ? "is a folder; expected a file" : "file not found";

    /// <summary>
    /// A folder that is there or can be created: no file in its place or above it, and the nearest
    /// folder that exists (itself or a parent) takes a new file. Root ignores permission bits but
    /// not a read-only mount, so the probe asks the kernel rather than reading the mode.
    /// </summary>
    public static string? WritableFolder(string path)
    {
        var full = Path.GetFullPath(path);
        var existing = full;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing)) return existing == full ? "is a file; expected a folder" : $"{existing} is a file; expected a folder";
            existing = Path.GetDirectoryName(existing)!;  // the root always exists
        }
        return Unwritable(existing);
    }

    /// <summary>A file to write: not a folder, in a folder that exists and takes a new file.</summary>
    public static string? WritableFile(string path)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) return "is a folder; expected a file";
        var parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent)) return File.Exists(parent) ? $"{parent} is a file; expected a folder" : $"folder {parent} not found";
        return Unwritable(parent);
    }

    static string? Unwritable(string folder)
    {
        try
        {
            using var probe = new FileStream(Path.Combine(folder, $".chainlora-probe-{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.Write,
                FileShare.None, 1, FileOptions.DeleteOnClose);
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return $"{folder} is not writable (permission denied)";
        }
        catch (IOException e)
        {
            // EROFS: .NET reports errno as the HResult on Unix.
            return e.HResult == 30 ? $"{folder} is on a read-only file system" : $"{folder} is not writable ({e.Message})";
        }
    }
}
