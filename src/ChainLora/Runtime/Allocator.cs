// glibc's malloc returns every block above its mmap threshold (at most 32 MB, raised as large
// blocks are freed) to the kernel when it is freed, and trims the heap top beyond a few MB. A
// training step allocates and frees the same activation-sized buffers every time, so each step
// pays for fresh zeroed pages again. Keeping freed memory in the heap removes that cost; the
// resident set then stays at its high-water mark, which a training process reaches anyway.
using System.Runtime.InteropServices;

namespace ChainLora.Runtime;

public static partial class Allocator
{
    const int TrimThreshold = -1, TopPad = -2, MmapThreshold = -3;   // mallopt parameters (malloc.h)

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// Tunes glibc's allocator for training loops (the CLI calls this at start). Returns false
    /// where it does not apply (not Linux, or a C library without mallopt). Process-wide: a
    /// program embedding the library decides for itself whether to call it.
    /// </summary>
    public static bool KeepFreedMemoryForReuse()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return MallOpt(MmapThreshold, 32 << 20) == 1          // glibc's largest allowed value
                 & MallOpt(TrimThreshold, int.MaxValue) == 1
                 & MallOpt(TopPad, 64 << 20) == 1;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Asks libtorch to back tensors of 2 MB and more with transparent huge pages (c10's
    /// THP_MEM_ALLOC_ENABLE: 2 MB alignment and madvise(MADV_HUGEPAGE)), where the kernel leaves
    /// that to madvise. A first touch of fresh memory then faults once per 2 MB instead of once per
    /// 4 KB; on the development VM a 4 KB fault costs ~13 us, so a fresh 64 MB tensor took ~200 ms
    /// to fault in (and ~10x less with huge pages), which dominated a knot on Llama-2-7B and the
    /// load of its weights. libtorch reads the variable once, at its first allocation, so call this
    /// before any tensor exists. It is set in the native environment (.NET's own copy is not what
    /// libtorch's getenv reads); a value the user set is kept.
    /// </summary>
    public static bool UseHugePagesForTensors()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return SetEnv("THP_MEM_ALLOC_ENABLE", "1", overwrite: 0) == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }
}
