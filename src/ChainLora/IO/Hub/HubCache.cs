// The Hugging Face cache layout of huggingface_hub's file_download.py, so that models downloaded
// by Python are found here and models downloaded here are found by Python:
//   {root}/models--org--name/refs/{revision}           the commit a branch or tag pointed to
//   {root}/models--org--name/blobs/{etag}               file contents, named by git sha1 or LFS sha256
//   {root}/models--org--name/snapshots/{commit}/{file}  relative symlink to ../../blobs/{etag}
//   {root}/.locks/models--org--name/{etag}.lock         held while one process writes the blob
namespace ChainLora.IO.Hub;

/// <summary>Paths and small operations on one cache root (HF_HUB_CACHE).</summary>
public sealed class HubCache(string root)
{
    public string Root { get; } = root;

    public string RepoFolder(HubModelSpec spec) => Path.Combine(Root, spec.FolderName);

    public string BlobPath(HubModelSpec spec, string etag) => Path.Combine(RepoFolder(spec), "blobs", etag);

    public string SnapshotFolder(HubModelSpec spec, string commit) => Path.Combine(RepoFolder(spec), "snapshots", commit);

    /// <summary>Where <paramref name="filename"/> (a repo path, '/'-separated) sits in the snapshot of <paramref name="commit"/>.</summary>
    public string SnapshotFile(HubModelSpec spec, string commit, string filename) =>
        Path.Combine(SnapshotFolder(spec, commit), RepoPath(filename));

    string RefPath(HubModelSpec spec) => Path.Combine(RepoFolder(spec), "refs", RepoPath(spec.Revision));

    /// <summary>
    /// The commit the cache knows for the revision: the revision itself when it is a commit hash,
    /// else the content of refs/{revision}; null when the cache has no such ref.
    /// </summary>
    public string? CommitOf(HubModelSpec spec)
    {
        if (spec.RevisionIsCommit) return spec.Revision;
        var path = RefPath(spec);
        // Left as it is, a folder here would fail the download's last step, writing the ref, with no name.
        if (Directory.Exists(path))
            throw new InvalidDataException($"{path}: a folder where the Hugging Face cache keeps the commit of '{spec.Revision}' in a file; " +
                "remove it so that the ref is written again");
        if (!File.Exists(path)) return null;
        var commit = File.ReadAllText(path).Trim();
        return HubModelSpec.IsCommitHash(commit) ? commit
            : throw new InvalidDataException($"{path}: expected a 40-hex commit hash, found '{commit}'");
    }

    /// <summary>
    /// The snapshot folder of the revision when the cache has it (complete or not), else null. A
    /// snapshot that is a symlink leading nowhere (a loop) is refused by name: files could be neither
    /// read from it nor linked into it.
    /// </summary>
    public string? FindSnapshot(HubModelSpec spec)
    {
        if (CommitOf(spec) is not { } commit) return null;
        var folder = SnapshotFolder(spec, commit);
        if (Directory.Exists(folder)) return folder;
        if (new DirectoryInfo(folder).LinkTarget is not null)
            throw new InvalidDataException($"{folder}: a symbolic link in the Hugging Face cache that leads to no folder (a loop, or dangling); " +
                "remove it so that the snapshot is downloaded again");
        return null;
    }

    /// <summary>Records that the revision (a branch or tag) points at <paramref name="commit"/>; no newline, as Python writes it.</summary>
    public void WriteRef(HubModelSpec spec, string commit)
    {
        if (!spec.RevisionIsCommit) AtomicFile.WriteAllText(RefPath(spec), commit);
    }

    /// <summary>
    /// Points the snapshot entry <paramref name="pointer"/> at <paramref name="blob"/> with a
    /// relative symlink (the cache stays valid when moved); where symlinks cannot be made the blob
    /// is copied, as huggingface_hub does on Windows without developer mode.
    /// </summary>
    public static void Link(string blob, string pointer)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        if (File.Exists(pointer) || new FileInfo(pointer).LinkTarget is not null) File.Delete(pointer);
        var relative = Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob);
        try
        {
            File.CreateSymbolicLink(pointer, relative);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(blob, pointer, overwrite: true);
        }
    }

    /// <summary>
    /// True when <paramref name="path"/> is a file or a symlink whose final target exists. A dangling
    /// link is absent, and so is a link loop: a download links the file afresh over either.
    /// </summary>
    public static bool IsPresent(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null) return info.Exists;
        try
        {
            return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
        }
        catch (IOException)
        {
            // ELOOP: "Too many levels of symbolic links".
            return false;
        }
    }

    /// <summary>How long a blob lock is waited for before giving up.</summary>
    public static TimeSpan LockTimeout { get; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Holds .locks/{repo}/{etag}.lock until disposed so that two processes (two grid jobs, or this
    /// and Python) never append to the same .incomplete blob. .NET's FileShare.None takes an
    /// exclusive flock on Unix, the same lock Python's filelock takes.
    /// </summary>
    public async Task<IDisposable> LockBlobAsync(HubModelSpec spec, string etag, CancellationToken cancel)
    {
        var path = Path.Combine(Root, ".locks", spec.FolderName, etag + ".lock");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Another process downloading the same blob holds the lock for as long as that takes; a
        // lock that cannot be taken for reasons other than contention (a read-only cache, a file
        // system without locks) would look the same, so the wait has an end and says why.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (File.Exists(path))
            {
                if (waited.Elapsed > LockTimeout)
                    throw new IOException($"{path}: could not lock this blob for {LockTimeout.TotalMinutes:F0} minutes ({e.Message}); " +
                        "another download of it may be running, or the cache folder does not allow locks", e);
                try
                {
                    await Task.Delay(200, cancel);
                }
                catch (OperationCanceledException stopped)
                {
                    throw new OperationCanceledException($"{path}: stopped while waiting for this blob's lock", stopped, cancel);
                }
            }
        }
    }

    /// <summary>A repo path ('/'-separated, from the Hub) as a relative local path; one that climbs out of its folder is refused.</summary>
    static string RepoPath(string filename)
    {
        var parts = filename.Split('/');
        if (filename.Length == 0 || Path.IsPathRooted(filename) || filename.Contains('\\', StringComparison.Ordinal)
            || parts.Any(p => p is "" or "." or ".."))
            throw new InvalidDataException($"repo path '{filename}' is not a relative path inside the repository");
        return Path.Combine(parts);
    }
}
