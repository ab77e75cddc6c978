namespace ChainLora.IO;

/// <summary>
/// An exclusive lock on a folder for one process: a lock file opened without sharing (an OS lock on
/// Linux and Windows, released when the process ends, however it ends). A second run or export into
/// the same folder fails at once, naming the folder, instead of interleaving its files.
/// </summary>
public sealed class FolderInUseException(string message, Exception inner) : IOException(message, inner);

public sealed class FolderLock : IDisposable
{
    public const string FileName = ".lock";
    readonly FileStream stream;

    FolderLock(FileStream stream) => this.stream = stream;

    /// <summary>Locks <paramref name="folder"/> through <c>FOLDER/.lock</c>: for a folder whose files are written in place (a run).</summary>
    public static FolderLock Acquire(string folder, string what = "run")
    {
        Directory.CreateDirectory(folder);
        return Open(Path.Combine(folder, FileName), folder, what);
    }

    /// <summary>
    /// Locks <paramref name="folder"/> through <c>.NAME.lock</c> beside it: for a folder that is replaced
    /// whole (an export, see <see cref="AtomicFolder"/>), where a lock file inside would be swapped away
    /// with the old folder. The lock file stays afterwards: deleting it would let a process that opened
    /// it just before hold a lock on a file no one else can see.
    /// </summary>
    public static FolderLock AcquireBeside(string folder, string what)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        var parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"{folder} is a root folder; it cannot be replaced whole");
        Directory.CreateDirectory(parent);
        return Open(Path.Combine(parent, $".{Path.GetFileName(full)}.lock"), folder, what);
    }

    static FolderLock Open(string path, string folder, string what)
    {
        try
        {
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            using (var writer = new StreamWriter(stream, leaveOpen: true)) writer.Write(Environment.ProcessId);
            stream.Flush();
            return new FolderLock(stream);
        }
        catch (IOException e)
        {
            throw new FolderInUseException($"{folder} is in use by another {what} ({path} is locked); wait for it or choose another folder", e);
        }
    }

    public void Dispose() => stream.Dispose();
}
