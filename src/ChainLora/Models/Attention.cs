// Shared pieces of causal self-attention: masks, positions, and the attention itself with grouped
// KV heads, by libtorch's fused kernel or by explicit matmul + softmax, whichever is faster.
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>How attention is computed.</summary>
public enum AttentionKernel
{
    /// <summary>Math on CPU for head sizes below 32 and at least 128 queries (where it is faster), fused otherwise: the default.</summary>
    Auto,
    /// <summary>libtorch's scaled_dot_product_attention (flash attention on CPU).</summary>
    Fused,
    /// <summary>
    /// softmax(q k^T / sqrt(d) + mask) v with plain matmuls, grouped KV heads never copied. Plain
    /// causal attention runs in query blocks that only score the keys they can see (about 5/8 of
    /// the full score matrix for 4 blocks). On the 2-core development CPU, at head size 8 and
    /// T = 256 (stories260K), forward + backward take 12 ms a layer against the fused kernel's 16;
    /// at head size 48 the fused kernel wins (19 against 26).
    /// </summary>
    Math,
}

/// <summary>How one forward pass attends: the mask (null when plain causal attention covers it) and the kernel.</summary>
public sealed record AttentionPlan(Tensor? Mask, bool IsCausal, AttentionKernel Kernel = AttentionKernel.Auto)
{
    /// <summary>
    /// <paramref name="paddingMask"/> (B, past+T): 0 for padding, and for real tokens the example
    /// they belong to: all 1 for one example a row (left padding), or 1, 1, 2, 2, 2, 3, ... for
    /// several packed into a row, each a contiguous run. Null is one unpadded example a row.
    /// Returns a boolean mask (B, 1, T, past+T) where true = may attend, or null when is_causal
    /// covers it: a query sees earlier keys of its own example only. A padded query row may always
    /// attend to itself so its softmax stays finite. With a <paramref name="window"/> (sliding-window
    /// attention, transformers' sliding_window_overlay) a query at i sees only keys j with
    /// i - window &lt; j &lt;= i; it changes nothing while past+T &lt;= window.
    /// </summary>
    public static AttentionPlan Create(Tensor? paddingMask, long past, long length, Device device, AttentionKernel kernel = AttentionKernel.Auto,
        int? window = null)
    {
        if (window is { } w && past + length <= w) window = null;
        if (paddingMask is null && window is null)
            return past == 0 ? new AttentionPlan(null, IsCausal: true, kernel)
                 : length == 1 ? new AttentionPlan(null, IsCausal: false, kernel)
                 : new AttentionPlan(CausalBlock(past, length, device).unsqueeze(0).unsqueeze(0), false, kernel);
        var causal = CausalBlock(past, length, device, window);                          // (T, S)
        if (paddingMask is null) return new AttentionPlan(causal.unsqueeze(0).unsqueeze(0), false, kernel);
        var total = past + length;
        var examples = paddingMask.to(ScalarType.Int64);
        var keys = examples.unsqueeze(1);                                                // (B, 1, S)
        var queries = examples.narrow(1, past, length).unsqueeze(2);                     // (B, T, 1)
        var sameExample = keys.eq(queries).logical_and(keys.ne(0));                      // (B, T, S)
        var self = arange(total, device: device).unsqueeze(0)
            .eq(arange(past, total, device: device).unsqueeze(1));                       // (T, S)
        var mask = causal.logical_and(sameExample.logical_or(self)).unsqueeze(1);         // (B, 1, T, S)
        return new AttentionPlan(mask, false, kernel);
    }

    /// <summary>(T, S) true where query past+t may see key s: s &lt;= past+t, and within <paramref name="window"/> when given.</summary>
    static Tensor CausalBlock(long past, long length, Device device, int? window = null)
    {
        var keys = arange(past + length, device: device).unsqueeze(0);
        var queries = arange(past, past + length, device: device).unsqueeze(1);
        var causal = keys.le(queries);
        return window is { } w ? causal.logical_and(keys.gt(queries - w)) : causal;
    }

    /// <summary>
    /// q (B, H, T, hd), k and v (B, KV, S, hd) with H a multiple of KV; returns (B, H, T, hd).
    /// Query heads h*rep .. h*rep+rep-1 share KV head h. Grouped KV heads are expanded to 4-D
    /// because libtorch's fused CPU attention kernel only takes 4-D inputs; the 5-D broadcast
    /// that avoids the copy falls back to the unfused math path, which is slower here.
    /// </summary>
    public Tensor Attend(Tensor q, Tensor k, Tensor v) =>
        UseMath(q) ? AttendMath(q, k, v) : AttendFused(q, k, v);

    /// <summary>Under Auto, CPU attention with heads smaller than this goes to the math path...</summary>
    public const int MathBelowHeadSize = 32;
    /// <summary>...when it has at least this many queries (short ones are overhead-bound: fused wins).</summary>
    public const int MathFromQueries = 128;

    /// <summary>Heads below this size get the math path's small-head layout (8 query blocks, transposed probs x V).</summary>
    const int SmallHeadSize = 16;

    /// <summary>
    /// Query blocks of causal math attention: more blocks skip more of the masked half (1/2 + 1/2n
    /// of the full scores are formed) at the cost of more, smaller matmuls. At head size 8 and
    /// T = 256, 8 blocks took 10.4 ms (forward + backward) against 11.2 for 4; at head size 48, 4 won.
    /// </summary>
    static int CausalBlocks(long headSize) => headSize < SmallHeadSize ? 8 : 4;

    bool UseMath(Tensor q) => Kernel switch
    {
        AttentionKernel.Math => true,
        AttentionKernel.Fused => false,
        _ => q.device.type == TorchSharp.DeviceType.CPU && q.shape[3] < MathBelowHeadSize && q.shape[2] >= MathFromQueries,
    };

    Tensor AttendMath(Tensor q, Tensor k, Tensor v)
    {
        var (b, h, t, hd) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
        var (kv, s) = (k.shape[1], k.shape[2]);
        var rep = h / kv;
        var scaled = q.mul(1.0 / Math.Sqrt(hd)).view(b, kv, rep, t, hd);
        var blocks = CausalBlocks(hd);
        if (Mask is null && IsCausal && s == t && t >= 2 * blocks)
        {
            // Query block i sees keys [0, end of block i): score only those; mask only the diagonal block.
            var size = (t + blocks - 1) / blocks;
            var outputs = new List<Tensor>();
            for (long start = 0; start < t; start += size)
            {
                var length = Math.Min(size, t - start);
                var seen = start + length;
                var scores = scaled.narrow(3, start, length).reshape(b, kv, rep * length, hd)
                    .matmul(k.narrow(2, 0, seen).transpose(2, 3)).view(b, kv, rep, length, seen);
                scores.narrow(4, start, length).add_(AdditiveMask(CausalBlock(0, length, q.device)));
                outputs.Add(WeightedValues(scores.softmax(-1).view(b, kv, rep * length, seen), v.narrow(2, 0, seen)).view(b, kv, rep, length, hd));
            }
            return cat(outputs, 3).view(b, h, t, hd);
        }
        var all = scaled.reshape(b, kv, rep * t, hd).matmul(k.transpose(2, 3)).view(b, kv, rep, t, s);
        var allowed = Mask is not null ? Mask.unsqueeze(2)                                          // (B, 1, 1, T, S)
                    : IsCausal ? CausalBlock(s - t, t, q.device)                                      // (T, S)
                    : null;
        // In place: the matmul's backward needs its inputs, not its output.
        if (allowed is not null) all.add_(AdditiveMask(allowed));
        return WeightedValues(all.softmax(-1).view(b, kv, rep * t, s), v).reshape(b, h, t, hd);
    }

    /// <summary>
    /// probs (B, KV, Q, S) times v (B, KV, S, hd). For small heads as (v^T probs^T)^T: libtorch's
    /// CPU matmul is 3x slower for products whose output has only hd (= 8) columns than for their
    /// transposes, and this form makes the forward and both backward products of the wide kind.
    /// At head size 8 it takes causal attention from 12.8 to 11.4 ms (forward + backward).
    /// </summary>
    static Tensor WeightedValues(Tensor probs, Tensor v) => v.shape[^1] < SmallHeadSize
        ? v.transpose(2, 3).matmul(probs.transpose(2, 3)).transpose(2, 3)
        : probs.matmul(v);

    /// <summary>0 where attending is allowed, -inf elsewhere.</summary>
    static Tensor AdditiveMask(Tensor allowed) =>
        zeros(allowed.shape, device: allowed.device).masked_fill_(allowed.logical_not(), float.NegativeInfinity);

    Tensor AttendFused(Tensor q, Tensor k, Tensor v)
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
    /// Position ids (B, T) of the new tokens: each token's offset from the first token of its
    /// example (<see cref="AttentionPlan.Create"/>'s mask: 0 padding, a run of one value an
    /// example). A left-padded row starts at 0 like an unpadded one (HF: cumsum(mask) - 1), and
    /// each example packed into a row starts at 0 again (HF: position_ids of packed sequences).
    /// Padding gets 0.
    /// </summary>
    public static Tensor Of(Tensor? paddingMask, long batch, long past, long length, Device device)
    {
        if (paddingMask is null)
            return arange(past, past + length, dtype: ScalarType.Int64, device: device).unsqueeze(0).expand(batch, length);
        var examples = paddingMask.to(ScalarType.Int64);
        var total = examples.shape[1];
        var index = arange(total, dtype: ScalarType.Int64, device: device).unsqueeze(0).expand(examples.shape[0], total);
        var starts = examples.narrow(1, 1, total - 1).ne(examples.narrow(1, 0, total - 1));
        var isStart = cat([ones(examples.shape[0], 1, dtype: ScalarType.Bool, device: device), starts], 1);
        var first = index.where(isStart, zeros_like(index)).cummax(1).values;          // the start of each token's run
        return (index - first).masked_fill(examples.eq(0), 0).narrow(1, past, length);
    }
}
