// CHAINLORA_LIBTORCH=DIR: run on the libtorch of an installed PyTorch (its torch/lib folder) or of
// a libtorch download instead of the bundled libtorch-cpu. A user with a CUDA PyTorch then gets a GPU
// without TorchSharp's 2 GB CUDA package. TorchSharp 0.107's shim is built against libtorch 2.10;
// its C ABI held against 2.11 on an H200 (docs/results/performance.md), and 1.x lacks symbols it needs.
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace ChainLora.Runtime;

/// <summary>A libtorch folder named by <see cref="Variable"/>: its version and its libraries, loaded by full path.</summary>
public static partial class ExternalLibTorch
{
    public const string Variable = "CHAINLORA_LIBTORCH";

    /// <summary>The libtorch TorchSharp 0.107's shim was built against; older ones lack symbols it calls.</summary>
    public static readonly Version Built = new(2, 10);

    /// <summary>Load order: each library's dependencies before it. The CUDA pair is optional (a CPU build has neither).</summary>
    static readonly string[] Libraries = ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];
    static readonly string[] Required = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    /// <summary>The folder named by the variable, or null when it is unset or empty.</summary>
    public static string? Folder => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } dir ? dir : null;

    /// <summary>
    /// The version of the libtorch in <paramref name="dir"/>, read from the file that comes with it:
    /// <c>../version.py</c> in a PyTorch installation (torch/lib beside torch/version.py), or
    /// <c>../build-version</c> in a libtorch download. Throws ArgumentException naming the variable,
    /// the folder and both versions when it cannot work with TorchSharp's shim.
    /// </summary>
    public static Version Check(string dir)
    {
        if (!Directory.Exists(dir))
            throw new ArgumentException($"{Variable}={dir}: no such folder (expected a torch/lib folder holding libtorch.so)");
        var missing = Required.Where(f => !File.Exists(Path.Combine(dir, f))).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"{Variable}={dir}: no libtorch here ({string.Join(", ", missing)} missing; expected a torch/lib folder)");
        var (file, text) = VersionFile(dir)
            ?? throw new ArgumentException($"{Variable}={dir}: cannot tell which libtorch this is (neither ../version.py nor ../build-version beside it)");
        var match = VersionPattern().Match(text);
        if (!match.Success)
            throw new ArgumentException($"{Variable}={dir}: no version in {file}");
        var version = new Version(int.Parse(match.Groups[1].Value), int.Parse(match.Groups[2].Value));
        if (version < Built || version.Major != Built.Major)
            throw new ArgumentException(
                $"{Variable}={dir}: libtorch {match.Value} cannot run TorchSharp 0.107, which is built for libtorch {Built} (use {Built} or a later {Built.Major}.x)");
        return version;
    }

    static (string File, string Text)? VersionFile(string dir)
    {
        foreach (var name in new[] { "version.py", "build-version" })
        {
            var path = Path.GetFullPath(Path.Combine(dir, "..", name));
            if (File.Exists(path)) return (path, File.ReadAllText(path));
        }
        return null;
    }

    // version.py: __version__ = '2.11.0+cu130'; build-version: 2.10.0+cpu
    [GeneratedRegex(@"(?<![\d.])(\d+)\.(\d+)\.\d+[^'""\s]*")]
    private static partial Regex VersionPattern();

    /// <summary>
    /// Loads the folder's libraries by full path, dependencies first, so that the shim and TorchSharp's
    /// own loads by name find these (the loader matches a loaded library by its soname) rather than
    /// the bundled libtorch-cpu. Returns the handles by file name.
    /// </summary>
    internal static Dictionary<string, IntPtr> Load(string dir)
    {
        var handles = new Dictionary<string, IntPtr>();
        foreach (var name in Libraries)
        {
            var path = Path.Combine(dir, name);
            if (!File.Exists(path)) continue;
            try
            {
                handles[name] = NativeLibrary.Load(path);
            }
            catch (DllNotFoundException e)
            {
                throw new ArgumentException($"{Variable}={dir}: {name} does not load ({e.Message.Split('\n')[0].Trim()})", e);
            }
        }
        return handles;
    }
}
