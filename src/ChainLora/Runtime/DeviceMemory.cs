// GPU memory as nvidia-smi sees it, through NVML (libnvidia-ml.so.1, installed with the driver):
// the memory in use on the whole device (every process, the CUDA context included) and what is
// free. TorchSharp 0.107 exposes neither the caching allocator's statistics nor cudaMemGetInfo.
using System.Runtime.InteropServices;

namespace ChainLora.Runtime;

public static partial class DeviceMemory
{
    [StructLayout(LayoutKind.Sequential)]
    struct NvmlMemory
    {
        public ulong Total, Free, Used;
    }

    const string Nvml = "libnvidia-ml.so.1";

    [LibraryImport(Nvml, EntryPoint = "nvmlInit_v2")]
    private static partial int Init();

    [LibraryImport(Nvml, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    private static partial int HandleByIndex(uint index, out IntPtr device);

    [LibraryImport(Nvml, EntryPoint = "nvmlDeviceGetMemoryInfo")]
    private static partial int MemoryInfo(IntPtr device, out NvmlMemory memory);

    static readonly Lazy<bool> Available = new(() =>
    {
        try
        {
            return Init() == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    });

    /// <summary>(used, free) bytes of GPU <paramref name="index"/>, or null without NVML (no NVIDIA driver).</summary>
    public static (long Used, long Free)? Query(int index)
    {
        if (!Available.Value || HandleByIndex((uint)Math.Max(0, index), out var device) != 0 || MemoryInfo(device, out var m) != 0) return null;
        return ((long)m.Used, (long)m.Free);
    }

    /// <summary>
    /// Polls the used memory of GPU <c>index</c> every <c>interval</c> until
    /// disposed; <see cref="PeakMb"/> is the highest seen (as nvidia-smi polled at that rate would
    /// report), NaN without NVML.
    /// </summary>
    public sealed class PeakPoller : IDisposable
    {
        readonly CancellationTokenSource stop = new();
        readonly Thread thread;
        long peak = -1;

        public PeakPoller(int index, TimeSpan interval)
        {
            thread = new Thread(() =>
            {
                do
                {
                    if (Query(index) is { } now) Interlocked.Exchange(ref peak, Math.Max(Interlocked.Read(ref peak), now.Used));
                } while (!stop.Token.WaitHandle.WaitOne(interval));
            })
            { IsBackground = true, Name = "device memory poller" };
            thread.Start();
        }

        public double PeakMb => Interlocked.Read(ref peak) is var p && p >= 0 ? p / 1048576.0 : double.NaN;

        public void Dispose()
        {
            stop.Cancel();
            thread.Join();
            stop.Dispose();
        }
    }
}
