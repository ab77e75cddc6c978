// The one atomic folder swap: a folder (a checkpoint, an export) is written whole beside its
// target and then put in its place, so a reader or a resumed run sees the old folder or the new
// one, and a failed write (a full disk, a refused merge) leaves the old folder and no half-written
// one behind.
namespace ChainLora.IO;

public static class AtomicFolder
{
    /// <summary>
    /// Runs <paramref name="write"/> on a fresh hidden folder beside <paramref name="target"/>,
    /// then moves any existing <paramref name="target"/> aside, moves the new folder in and deletes
    /// the old one. The temporary folder is removed when <paramref name="write"/> throws.
    /// </summary>
    public static void Replace(string target, Action<string> write)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var name = Path.GetFileName(full);
        Recover(full);
        // What a killed process left: its half-written folders and, beside a complete target, old copies.
        // A live writer's copies are its work in progress (an export into the same folder); leave them.
        DeleteCopies(parent, name, deadWritersOnly: true);
        var temp = Path.Combine(parent, $".{name}.tmp-{Environment.ProcessId}");
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            Runtime.FaultInjection.Point("checkpoint-write");
        }
        catch
        {
            Directory.Delete(temp, recursive: true);
            throw;
        }
        if (!Directory.Exists(full))
        {
            Directory.Move(temp, full);
            return;
        }
        var old = Path.Combine(parent, $".{name}.old-{Environment.ProcessId}");
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        Directory.Move(full, old);
        Runtime.FaultInjection.Point("checkpoint-swap");
        Directory.Move(temp, full);
        Directory.Delete(old, recursive: true);
    }

    /// <summary><paramref name="target"/> and every copy a killed <see cref="Replace"/> left beside it, deleted.</summary>
    public static void Delete(string target)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        var parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent)) return;
        DeleteCopies(parent, Path.GetFileName(full), deadWritersOnly: false);
        if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
    }

    /// <summary>
    /// The temporary (.NAME.tmp-PID) and old (.NAME.old-PID) folders of <paramref name="name"/> in
    /// <paramref name="parent"/>; with <paramref name="deadWritersOnly"/>, only those whose process has
    /// ended (or is this one, whose earlier attempt is over). A reused PID keeps a stale copy until that
    /// process ends too: disk space, never a live writer's files.
    /// </summary>
    static void DeleteCopies(string parent, string name, bool deadWritersOnly)
    {
        foreach (var copy in Directory.GetDirectories(parent, $".{name}.tmp-*").Concat(Directory.GetDirectories(parent, $".{name}.old-*")))
            if (!deadWritersOnly || !WriterIsAlive(copy))
                Directory.Delete(copy, recursive: true);
    }

    static bool WriterIsAlive(string copy)
    {
        if (!int.TryParse(copy[(copy.LastIndexOf('-') + 1)..], out var pid) || pid == Environment.ProcessId) return false;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return true;
        }
        catch (ArgumentException)
        {
            return false; // no process with that id
        }
    }

    /// <summary>
    /// A process killed between moving the old folder aside and the new one in leaves no
    /// <paramref name="target"/> but a complete <c>.NAME.old-PID</c>: put it back. Readers call this
    /// before looking, so the swap is atomic even across a crash.
    /// </summary>
    public static void Recover(string target)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        var parent = Path.GetDirectoryName(full)!;
        if (Directory.Exists(full) || !Directory.Exists(parent)) return;
        var old = Directory.GetDirectories(parent, $".{Path.GetFileName(full)}.old-*").FirstOrDefault();
        if (old is not null) Directory.Move(old, full);
    }
}
