// The one checked merge of LoRA factors into a weight, W + scaling B A, formed in fp32 and rounded
// once to the weight's dtype (PEFT's safe merge): a knot (LoraLinear.TieKnot), a PEFT adapter
// merged into a model (PeftAdapter.MergeInto) and a merged export (MergedExport) all go through it.
using static TorchSharp.torch;

namespace ChainLora.Lora;

public static class WeightMerge
{
    /// <summary>
    /// Rows merged per block: a 4096x4096 layer's fp32 temporaries at once are 64 MB, above glibc's
    /// mmap threshold, so every merge would fault fresh pages in (~200 ms a tensor on the
    /// development VM); 8 MB blocks are served again from the heap. Each element's sum is the same
    /// either way: w + scaling * (B row) . (A column).
    /// </summary>
    const long BlockElements = 1 << 21;

    /// <summary>
    /// The one expression of a LoRA link's delta: scaling * B A, (out, in) in fp32, B A formed first.
    /// Links (<see cref="LoraFactors.Delta"/>, <see cref="LoraLinear.DeltaWeight"/>) and merges all use it.
    /// </summary>
    public static Tensor Delta(Tensor a, Tensor b, double scaling) => b.to(ScalarType.Float32).matmul(a.to(ScalarType.Float32)) * scaling;

    /// <summary>
    /// Whether scaling * B A is finite, without forming it when that is certain: with A (r, in) and
    /// B (out, r) finite, every entry of B A is at most r * max|B| * max|A| in magnitude, and B A is
    /// formed before the scaling is applied, so a scaling below 1 does not shrink what must stay
    /// finite. Only a bound near the fp32 range (a diverged link) forms the product to look.
    /// </summary>
    public static bool IsFinite(Tensor a, Tensor b, double scaling)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var maxA = a.abs().max().item<float>();
        var maxB = b.abs().max().item<float>();
        if (!float.IsFinite(maxA) || !float.IsFinite(maxB) || !double.IsFinite(scaling)) return false;
        if ((double)a.shape[0] * maxA * maxB * Math.Max(1, Math.Abs(scaling)) < float.MaxValue / 2) return true;
        return Delta(a, b, scaling).isfinite().all().item<bool>();
    }

    /// <summary>
    /// A knot refuses a delta whose Frobenius norm exceeds this multiple of max(||W||_F, 1): a
    /// finite but absurd link (a learning rate of 1e37) would otherwise be merged for good. Trained
    /// links are orders of magnitude smaller than their weight.
    /// </summary>
    public const double MaxRelativeDelta = 10;

    /// <summary>||scaling B A||_F from r x r products, never forming (out, in): ||B A||_F^2 = tr((B^T B)(A A^T)).</summary>
    public static double DeltaNorm(Tensor a, Tensor b, double scaling)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var (a32, b32) = (a.to(ScalarType.Float64), b.to(ScalarType.Float64));
        var squared = b32.t().matmul(b32).mul(a32.matmul(a32.t())).sum().item<double>();
        return Math.Abs(scaling) * Math.Sqrt(Math.Max(0, squared));
    }

    /// <summary>Why scaling * B A must not be merged into <paramref name="weight"/> (not finite, or absurdly large), or null.</summary>
    public static string? Refusal(Tensor weight, Tensor a, Tensor b, double scaling)
    {
        if (!IsFinite(a, b, scaling)) return "the delta is not finite";
        var delta = DeltaNorm(a, b, scaling);
        double norm;
        // A scope: the fp32 copy of a bf16 weight (64 MB for a 7B projection) is freed here, not at
        // the end of the knot, which checks every layer before merging any (8 GB for Llama-2-7B).
        using (no_grad())
        using (NewDisposeScope())
            norm = weight.to(ScalarType.Float32).norm().item<float>();
        var bound = MaxRelativeDelta * Math.Max(norm, 1);
        return double.IsFinite(delta) && delta <= bound ? null
            : $"the delta's norm {delta:G3} exceeds {MaxRelativeDelta} x max(||W||, 1) = {bound:G3}";
    }

    /// <summary>
    /// <paramref name="weight"/> (out, in), any dtype and device, += <paramref name="scaling"/> *
    /// <paramref name="b"/> (out, r) <paramref name="a"/> (r, in), in fp32 row blocks on the
    /// weight's device, each rounded once into the weight. Check <see cref="IsFinite"/> first.
    /// </summary>
    public static void AddInPlace(Tensor weight, Tensor a, Tensor b, double scaling)
    {
        using var _ = no_grad();
        var (rowsTotal, columns) = (weight.shape[0], weight.shape[1]);
        var rows = Math.Max(1, BlockElements / columns);
        for (long first = 0; first < rowsTotal; first += rows)
        {
            using var scope = NewDisposeScope();
            var n = Math.Min(rows, rowsTotal - first);
            var block = weight.narrow(0, first, n);
            var delta = Delta(a.to(weight.device), b.narrow(0, first, n).to(weight.device), scaling);
            block.copy_(block.to(ScalarType.Float32) + delta);
        }
    }
}
