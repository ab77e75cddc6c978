// The dtype a model keeps its activations in (CausalLM.ActivationDtype), as a run's setting.
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>How activations are kept: chosen per device, or named.</summary>
public enum ActivationPrecision
{
    /// <summary>fp32 on the CPU; on a GPU, the dtype the matrices are stored in (bf16 with --base-dtype bf16), as transformers does.</summary>
    Auto,
    /// <summary>An fp32 residual stream; only the inputs of bf16 matmuls are rounded.</summary>
    Fp32,
    /// <summary>bf16 activations (norms and softmax in fp32, rounded back; LoRA in fp32).</summary>
    Bf16,
}

public static class ActivationPrecisions
{
    /// <summary>The dtype <paramref name="precision"/> means for <paramref name="model"/> on its device.</summary>
    public static ScalarType Resolve(ActivationPrecision precision, CausalLM model) => precision switch
    {
        ActivationPrecision.Fp32 => ScalarType.Float32,
        ActivationPrecision.Bf16 => ScalarType.BFloat16,
        _ => model.Device.type == TorchSharp.DeviceType.CPU ? ScalarType.Float32 : model.StorageDtype,
    };
}
