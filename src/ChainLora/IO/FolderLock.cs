namespace ChainLora.IO;

/// <summary>
/// An exclusive lock on a folder for one process: <c>.lock</c> inside it, opened without sharing
/// (an OS lock on Linux and Windows, released when the process ends, however it ends). A second
/// run into the same folder fails at once, naming the folder, instead of interleaving its files.
/// </summary>
public sealed class FolderInUseException(string message, Exception inner) : IOException(message, inner);

public sealed class FolderLock : IDisposable
{
    public const string FileName = ".lock";
    readonly FileStream stream;

    FolderLock(FileStream stream) => this.stream = stream;

    public static FolderLock Acquire(string folder, string what = "run")
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, FileName);
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
