// Output folders are written whole or not at all: the export goes into a sibling temp folder that
// is then swapped in, so an interrupted export never leaves a half-written --out behind.
using System.Text.RegularExpressions;

namespace ChainLora.Export;

static partial class ExportDirectory
{
    // Every file name an export (PEFT adapter, merged model, saved chain) may write.
    static readonly HashSet<string> KnownFiles = new(
    [
        PeftAdapterConfig.FileName, PeftAdapter.WeightsFileName, "README.md",
        "config.json", "model.safetensors", "model.safetensors.index.json", "generation_config.json",
        RunArtifacts.ChainJson, RunArtifacts.LinksFile,
        .. MergedExport.TokenizerFiles,
    ], StringComparer.Ordinal);

    [GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial Regex ShardName();

    /// <summary>
    /// Runs <paramref name="write"/> on a fresh folder beside <paramref name="outDir"/>, then puts it
    /// in <paramref name="outDir"/>'s place. Refuses, before writing anything, to replace a folder
    /// holding files an export does not write unless <paramref name="overwrite"/>.
    /// </summary>
    public static void Write(string outDir, bool overwrite, Action<string> write)
    {
        IO.AtomicFolder.Replace(CheckReplaceable(outDir, overwrite), write);
    }

    /// <summary>
    /// Throws unless <paramref name="outDir"/> is absent, empty, an earlier export, or
    /// <paramref name="overwrite"/> is set; returns its full path. Call it before slow work too.
    /// </summary>
    public static string CheckReplaceable(string outDir, bool overwrite)
    {
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        if (File.Exists(target)) throw new ArgumentException($"output {outDir} is a file, not a folder");
        if (Directory.Exists(target) && !overwrite && Foreign(target) is { } foreign)
            throw new ArgumentException(
                $"output folder {outDir} is not empty and holds '{foreign}', which no export writes; " +
                "choose an empty or new folder, or pass --force to replace it");
        return target;
    }

    /// <summary>The first entry of <paramref name="dir"/> that no export writes, or null.</summary>
    static string? Foreign(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName)
            .FirstOrDefault(name => Directory.Exists(Path.Combine(dir, name!)) || !(KnownFiles.Contains(name!) || ShardName().IsMatch(name!)));
}
