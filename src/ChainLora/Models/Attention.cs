// Shared pieces of causal self-attention: masks, positions and the SDPA call with grouped KV heads.
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>How a forward pass attends: positions, mask, and whether plain causal masking suffices.</summary>
public sealed record AttentionPlan(Tensor? Mask, bool IsCausal)
{
    /// <summary>
    /// <paramref name="paddingMask"/> (B, past+T) with 1 for real tokens, or null. Returns a
    /// boolean mask (B, 1, T, past+T) where true = may attend, or null when is_causal covers it.
    /// A padded query row may always attend to itself so its softmax stays finite.
    /// </summary>
    public static AttentionPlan Create(Tensor? paddingMask, long past, long length, Device device)
    {
        if (paddingMask is null)
            return past == 0 ? new AttentionPlan(null, IsCausal: true)
                 : length == 1 ? new AttentionPlan(null, IsCausal: false)
                 : new AttentionPlan(CausalBlock(past, length, device).unsqueeze(0).unsqueeze(0), false);
        var total = past + length;
        var causal = CausalBlock(past, length, device);                                  // (T, S)
        var keyValid = paddingMask.to(ScalarType.Bool).unsqueeze(1);                     // (B, 1, S)
        var self = arange(total, device: device).unsqueeze(0)
            .eq(arange(past, total, device: device).unsqueeze(1));                       // (T, S)
        var mask = causal.logical_and(keyValid.logical_or(self)).unsqueeze(1);            // (B, 1, T, S)
        return new AttentionPlan(mask, false);
    }

    static Tensor CausalBlock(long past, long length, Device device) =>
        arange(past + length, device: device).unsqueeze(0)
            .le(arange(past, past + length, device: device).unsqueeze(1));

    /// <summary>
    /// q (B, H, T, hd), k and v (B, KV, S, hd) with H a multiple of KV; returns (B, H, T, hd).
    /// Query heads h*rep .. h*rep+rep-1 share KV head h. Grouped KV heads are expanded to 4-D
    /// because libtorch's fused CPU attention kernel only takes 4-D inputs; the 5-D broadcast
    /// that avoids the copy falls back to the unfused math path, which is slower here.
    /// </summary>
    public Tensor Attend(Tensor q, Tensor k, Tensor v)
    {
        var (b, h, s, hd) = (q.shape[0], q.shape[1], k.shape[2], q.shape[3]);
        var kv = k.shape[1];
        if (kv != h)
        {
            var rep = h / kv;
            k = k.unsqueeze(2).expand(b, kv, rep, s, hd).reshape(b, h, s, hd);
            v = v.unsqueeze(2).expand(b, kv, rep, s, hd).reshape(b, h, s, hd);
        }
        return nn.functional.scaled_dot_product_attention(q, k, v, Mask, 0, IsCausal);
    }
}

public static class Positions
{
    /// <summary>
    /// Position ids (B, T) of the new tokens: the count of real tokens before each one, so a
    /// left-padded row starts at 0 like an unpadded one (HF: cumsum(mask) - 1, pads clamped).
    /// </summary>
    public static Tensor Of(Tensor? paddingMask, long batch, long past, long length, Device device)
    {
        if (paddingMask is null)
            return arange(past, past + length, dtype: ScalarType.Int64, device: device).unsqueeze(0).expand(batch, length);
        var counts = paddingMask.to(ScalarType.Int64).cumsum(1) - 1;
        return counts.clamp_min(0).narrow(1, past, length);
    }
}
