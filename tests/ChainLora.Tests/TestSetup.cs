using System.Runtime.CompilerServices;

namespace ChainLora.Tests;

static class TestSetup
{
    /// <summary>Every test may touch TorchSharp directly; load its native backend first.</summary>
    [ModuleInitializer]
    internal static void Init()
    {
        ChainLora.IO.NativeRuntime.Ensure();
        TorchSharp.torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
    }
}
