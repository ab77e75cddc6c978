// The one atomic text write: readers see the old file or the new one, never a half-written one.
namespace ChainLora.IO;

/// <summary>Write to a temporary file beside the target, then rename over it.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = $"{path}.tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
