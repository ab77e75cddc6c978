// Makes TorchSharp's native shim loadable on systems whose libstdc++ predates GLIBCXX_3.4.32
// (Debian 12 ships 3.4.30). libLibTorchSharp.so 0.107.0 asks for that version for exactly one
// symbol, std::ios_base_library_init, a link-time-only reference with no relocation. Marking the
// version need weak (VER_FLG_WEAK in .gnu.version_r) in a private copy lets glibc load it.
using System.Runtime.InteropServices;
using ChainLora.IO;
using TorchSharp;

namespace ChainLora.Runtime;

/// <summary>Loads TorchSharp's native backend, patching a copy of the shim only when needed.</summary>
public static class NativeRuntime
{
    const string ShimFile = "libLibTorchSharp.so";
    const string MissingVersion = "GLIBCXX_3.4.32";
    static readonly object Gate = new();
    static IntPtr shim;
    static bool ready;

    /// <summary>Where the patched shim was loaded from, or null when the original loaded as is.</summary>
    public static string? PatchedShimPath { get; private set; }

    /// <summary>Idempotent; call before the first TorchSharp operation (ChainLora entry points do).</summary>
    public static void Ensure()
    {
        if (ready) return;
        lock (Gate)
        {
            if (ready) return;
            if (OperatingSystem.IsLinux()) LoadShim();
            torch.InitializeDeviceType(DeviceType.CPU);
            ready = true;
        }
    }

    /// <summary>The libtorch folder loaded instead of the bundled one (<see cref="ExternalLibTorch"/>), or null.</summary>
    public static string? LibTorchFolder { get; private set; }

    static void LoadShim()
    {
        var original = FindOriginalShim();
        if (original is null) return; // Not a linux-x64 layout we know: let TorchSharp probe on its own.
        var external = ExternalLibTorch.Folder;
        Dictionary<string, IntPtr> libtorch = [];
        if (external is not null)
        {
            ExternalLibTorch.Check(external);
            libtorch = ExternalLibTorch.Load(external);
            LibTorchFolder = external;
        }
        var error = TryLoad(original);
        if (error is not null)
        {
            if (external is null && !File.Exists(Path.Combine(Path.GetDirectoryName(original)!, "libtorch.so")))
                throw new InvalidOperationException(
                    $"no libtorch beside TorchSharp's native shim in {Path.GetDirectoryName(original)}: set {ExternalLibTorch.Variable} to a torch/lib folder of libtorch {ExternalLibTorch.Built} or later");
            if (!error.Contains(MissingVersion, StringComparison.Ordinal))
                throw new InvalidOperationException($"Cannot load TorchSharp's native shim '{original}': {error}");
            var patched = PatchedCopy(original);
            // The copy lives elsewhere, so its $ORIGIN runpath no longer finds libtorch: preload the
            // dependencies from the original folder (unless another libtorch is loaded already); the
            // loader then matches them by soname.
            var dir = Path.GetDirectoryName(original)!;
            foreach (var dep in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
            {
                var path = Path.Combine(dir, dep);
                if (external is null && File.Exists(path)) NativeLibrary.Load(path);
            }
            if (TryLoad(patched) is { } patchedError)
                throw new InvalidOperationException(
                    $"Patched TorchSharp shim '{patched}' still fails to load: {patchedError}. " +
                    $"Install a libstdc++ that provides {MissingVersion} (GCC 13 or later).");
            PatchedShimPath = patched;
        }
        if (PatchedShimPath is null && external is null) return;
        // TorchSharp loads torch_cpu / torch_cuda and the shim by name: hand it the libraries loaded
        // here, never a second copy from the application folder.
        NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, (name, _, _) =>
            name.Contains("LibTorchSharp", StringComparison.Ordinal) ? shim
            : name.Contains("torch_cuda", StringComparison.Ordinal) ? libtorch.GetValueOrDefault("libtorch_cuda.so")
            : name.Contains("torch_cpu", StringComparison.Ordinal) ? libtorch.GetValueOrDefault("libtorch_cpu.so")
            : IntPtr.Zero);
    }

    static string? FindOriginalShim()
    {
        var torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? AppContext.BaseDirectory;
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", ShimFile),
            Path.Combine(AppContext.BaseDirectory, ShimFile),
            Path.Combine(torchDir, "runtimes", "linux-x64", "native", ShimFile),
            // NuGet cache layout: torchsharp/0.107.0/lib/net6.0/TorchSharp.dll
            Path.GetFullPath(Path.Combine(torchDir, "..", "..", "runtimes", "linux-x64", "native", ShimFile)),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>Writes (once) a copy of the shim with the missing version need marked weak.</summary>
    static string PatchedCopy(string original)
    {
        var bytes = File.ReadAllBytes(original);
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes))[..16].ToLowerInvariant();
        var cacheRoot = Environment.GetEnvironmentVariable("CHAINLORA_CACHE")
            ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME")
                ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "chainlora");
        var dir = Path.Combine(cacheRoot, "native", hash);
        var target = Path.Combine(dir, ShimFile);
        if (File.Exists(target)) return target;

        var changed = ElfVersionPatch.MarkVersionNeedWeak(bytes, MissingVersion);
        if (changed == 0)
            throw new InvalidOperationException(
                $"'{original}' needs {MissingVersion} but has no version-need entry for it that can be marked weak.");
        try
        {
            AtomicFile.WriteAllBytes(target, bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"Cannot write the patched TorchSharp shim to '{dir}' ({e.Message}); set CHAINLORA_CACHE to a writable folder.", e);
        }
        return target;
    }

    /// <summary>Loads into <see cref="shim"/>; returns null on success, else the loader's message.</summary>
    static string? TryLoad(string path)
    {
        try
        {
            shim = NativeLibrary.Load(path);
            return null;
        }
        catch (DllNotFoundException e)
        {
            return e.Message;
        }
    }
}
