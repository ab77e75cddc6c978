// Rotary position embedding in Hugging Face's rotate-half layout (modeling_llama.py):
// q' = q cos + rotate_half(q) sin, with frequencies repeated over both halves of the head.
// llama2.c checkpoints rotate interleaved pairs instead; IO/Llama2cCheckpoint permutes their
// q/k rows on load so one implementation serves both.
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class RotaryEmbedding(int headDim, double theta)
{
    /// <summary>cos and sin (B, 1, T, hd) for position ids (B, T), computed in fp64 and rounded to <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) For(Tensor positionIds, ScalarType dtype = ScalarType.Float32)
    {
        var device = positionIds.device;
        // theta as a tensor on the positions' device: a bare double would become one on torch's default device.
        var invFreq = 1.0 / pow(tensor(theta, ScalarType.Float64, device), arange(0, headDim, 2, dtype: ScalarType.Float64, device: device) / headDim);
        var freqs = positionIds.to(ScalarType.Float64).unsqueeze(-1) * invFreq;   // (B, T, hd/2)
        var emb = cat([freqs, freqs], -1);                                            // (B, T, hd)
        return (emb.cos().to(dtype).unsqueeze(1), emb.sin().to(dtype).unsqueeze(1));
    }

    /// <summary>x (B, heads, T, hd) rotated by position.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return x * cos + rotated * sin;
    }
}
