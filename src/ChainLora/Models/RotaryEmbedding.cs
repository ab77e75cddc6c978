// Rotary position embedding in Hugging Face's rotate-half layout (modeling_llama.py
// LlamaRotaryEmbedding and apply_rotary_pos_emb): q' = q cos + rotate_half(q) sin, with the
// frequencies repeated over both halves. The frequencies come from rope_scaling (RopeScaling.cs);
// angles are formed and cos / sin taken in fp32, as transformers does, then multiplied by the rope
// type's attention factor. Phi-3's partial rotary rotates only the first dims of each head.
// llama2.c checkpoints rotate interleaved pairs instead; IO/Llama2cCheckpoint permutes their
// q/k rows on load so one implementation serves both.
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class RotaryEmbedding
{
    readonly int dim;
    readonly double theta;
    readonly RopeScaling? scaling;
    readonly int maxPositionEmbeddings;
    readonly Tensor invFreq;            // (dim / 2) fp32 on the CPU; recomputed per forward under dynamic scaling
    readonly double attentionFactor;

    /// <summary>
    /// <paramref name="dim"/> rotated dims per head (head_dim, or head_dim x partial_rotary_factor), base
    /// <paramref name="theta"/>, and the config's <paramref name="scaling"/> (null: none).
    /// </summary>
    public RotaryEmbedding(int dim, double theta, RopeScaling? scaling = null, int maxPositionEmbeddings = 0)
    {
        (this.dim, this.theta, this.scaling, this.maxPositionEmbeddings) = (dim, theta, scaling, maxPositionEmbeddings);
        (invFreq, attentionFactor) = RopeScaling.Frequencies(scaling, dim, theta, maxPositionEmbeddings);
        invFreq = invFreq.DetachFromDisposeScope();
    }

    /// <summary>
    /// cos and sin (B, 1, T, dim) for position ids (B, T), rounded to <paramref name="dtype"/>. Under
    /// dynamic scaling the frequencies follow the longest position of this call, max(positions) + 1,
    /// as transformers' dynamic_rope_update does for a model that has seen no longer sequence; with a
    /// KV cache, cached keys keep the rotation they were given, as in transformers' generate.
    /// </summary>
    public (Tensor Cos, Tensor Sin) For(Tensor positionIds, ScalarType dtype = ScalarType.Float32)
    {
        var device = positionIds.device;
        var frequencies = scaling?.Kind == RopeKind.Dynamic
            ? RopeScaling.Frequencies(scaling, dim, theta, maxPositionEmbeddings, positionIds.max().item<long>() + 1).InvFreq
            : invFreq;
        var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * frequencies.to(device);   // (B, T, dim/2) fp32
        var emb = cat([freqs, freqs], -1);                                                         // (B, T, dim)
        var (cos, sin) = (emb.cos(), emb.sin());
        if (attentionFactor != 1.0) (cos, sin) = (cos * attentionFactor, sin * attentionFactor);
        return (cos.to(dtype).unsqueeze(1), sin.to(dtype).unsqueeze(1));
    }

    /// <summary>x (B, heads, T, hd) rotated by position; with cos narrower than hd, only its first dims (partial rotary).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var rotary = cos.shape[^1];
        if (rotary < x.shape[^1])
        {
            var pass = x.narrow(-1, rotary, x.shape[^1] - rotary);
            return cat([Apply(x.narrow(-1, 0, rotary), cos, sin), pass], -1);
        }
        var half = rotary / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return x * cos + rotated * sin;
    }
}
