// glibc's malloc returns every block above its mmap threshold (at most 32 MB, raised as large
// blocks are freed) to the kernel when it is freed, and trims the heap top beyond a few MB. A
// training step allocates and frees the same activation-sized buffers every time, so each step
// pays for fresh zeroed pages again. Keeping freed memory in the heap removes that cost; the
// resident set then stays at its high-water mark, which a training process reaches anyway.
using System.Runtime.InteropServices;

namespace ChainLora.IO;

public static partial class Allocator
{
    const int TrimThreshold = -1, TopPad = -2, MmapThreshold = -3;   // mallopt parameters (malloc.h)

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

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
}
