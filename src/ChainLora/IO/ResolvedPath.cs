// Where a path really leads: every symbolic link in it resolved, so two spellings of one folder
// compare equal. An export uses it to refuse an output folder that is, holds or lies inside what it
// reads, since replacing that folder would delete its own source.
namespace ChainLora.IO;

public static class ResolvedPath
{
    // Linux's limit (MAXSYMLINKS): a loop of links fails instead of spinning.
    const int MaxLinks = 40;
    static readonly char[] Separators = [Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar];

    // Case-insensitive where the file system usually is (Windows, macOS): comparing too broadly only refuses more.
    static StringComparison Comparison => OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

    /// <summary>
    /// The full path of <paramref name="path"/> with the symbolic links in every component resolved, as the
    /// kernel follows them (a link's "..", from the folder it leads to); a part that does not exist yet is
    /// kept as written. Bind mounts are not seen: two mounts of one folder stay two paths.
    /// </summary>
    public static string Of(string path)
    {
        var full = Path.GetFullPath(path);
        var current = Path.GetPathRoot(full)!;
        var pending = new Stack<string>(full[current.Length..].Split(Separators, StringSplitOptions.RemoveEmptyEntries).Reverse());
        var links = 0;
        while (pending.TryPop(out var part))
        {
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? current; // current has no links left: its textual parent is the real one
                continue;
            }
            var next = Path.Combine(current, part);
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                current = next;
                continue;
            }
            if (++links > MaxLinks) throw new IOException($"{path}: too many levels of symbolic links");
            // The target's components come next, from the link's folder or, for an absolute target, from its root.
            foreach (var p in target.Split(Separators, StringSplitOptions.RemoveEmptyEntries).Reverse()) pending.Push(p);
            if (Path.IsPathRooted(target)) current = Path.GetPathRoot(target)!;
        }
        return current;
    }

    /// <summary>Whether resolved path <paramref name="inner"/> is <paramref name="outer"/> or lies inside it.</summary>
    public static bool IsSameOrInside(string inner, string outer)
    {
        var (a, b) = (Path.TrimEndingDirectorySeparator(inner), Path.TrimEndingDirectorySeparator(outer));
        return a.Equals(b, Comparison) || a.StartsWith(Path.EndsInDirectorySeparator(b) ? b : b + Path.DirectorySeparatorChar, Comparison);
    }
}
