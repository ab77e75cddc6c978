using BenchmarkDotNet.Attributes;
using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Benchmarks;

/// <summary>A LoRA-adapted 768x768 projection (llama110m's q_proj) on 1024 tokens: forward and forward+backward.</summary>
[MemoryDiagnoser]
public class LoraLinearBenchmarks
{
    [Params("fp32", "bf16")] public string BaseDtype { get; set; } = "fp32";

    Linear layer = null!;
    Tensor x = null!;

    [GlobalSetup]
    public void Setup()
    {
        Runtime.NativeRuntime.Ensure();
        manual_seed(0);
        var dtype = BaseDtype == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        layer = new Linear(768, 768, hasBias: false, dtype);
        var holder = new TorchSharp.Modules.ModuleList<Linear>(layer);
        LoraAdapters.Inject(holder, new LoraConfig { TargetModules = ["0"] });
        x = randn(4, 256, 768).requires_grad_(true);
    }

    [Benchmark]
    public void Forward()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        layer.call(x);
    }

    [Benchmark]
    public void ForwardBackward()
    {
        using var scope = NewDisposeScope();
        layer.call(x).sum().backward();
    }
}

/// <summary>Causal attention at llama110m's width: B 4, 12 heads, T 256, head 64.</summary>
public class AttentionBenchmarks
{
    Tensor q = null!, k = null!, v = null!;

    [GlobalSetup]
    public void Setup()
    {
        Runtime.NativeRuntime.Ensure();
        q = randn(4, 12, 256, 64).requires_grad_(true);
        k = randn(4, 12, 256, 64).requires_grad_(true);
        v = randn(4, 12, 256, 64).requires_grad_(true);
    }

    [Benchmark]
    public void CausalForwardBackward()
    {
        using var scope = NewDisposeScope();
        new AttentionPlan(null, IsCausal: true).Attend(q, k, v).sum().backward();
    }
}

/// <summary>One knot (TieKnot + ExtendChain over every adapted layer) on a llama110m-shaped model.</summary>
public class KnotBenchmarks
{
    [Params("fp32", "bf16")] public string BaseDtype { get; set; } = "fp32";

    LoraAdapters adapters = null!;

    [GlobalSetup]
    public void Setup()
    {
        Runtime.NativeRuntime.Ensure();
        var dtype = BaseDtype == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        var model = Loading.PretrainedModel.Create(Benchmarking.BenchShapes.Config("llama110m"), dtype);
        adapters = LoraAdapters.Inject(model, new LoraConfig());
    }

    [Benchmark]
    public void TieKnotAndExtendChain()
    {
        adapters.TieKnot();
        adapters.ExtendChain(8, 16);
    }
}
