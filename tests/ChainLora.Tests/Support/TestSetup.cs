using System.Runtime.CompilerServices;

// Tests seed torch's global generator (training is deterministic for a seed), so test classes
// must not run concurrently; on two cores parallel classes only contend for the same cores anyway.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace ChainLora.Tests;

static class TestSetup
{
    /// <summary>Every test may touch TorchSharp directly; load its native backend first.</summary>
    [ModuleInitializer]
    internal static void Init()
    {
        ChainLora.Runtime.NativeRuntime.Ensure();
        TorchSharp.torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
    }
}
