using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>The math attention path computes what libtorch's fused kernel does, masks and grouped heads included.</summary>
public class AttentionKernelTests
{
    static (Tensor Out, Tensor GradQ, Tensor GradK) Run(AttentionKernel kernel, AttentionPlan plan, Tensor q, Tensor k, Tensor v)
    {
        var (qq, kk) = (q.detach().requires_grad_(true), k.detach().requires_grad_(true));
        var output = (plan with { Kernel = kernel }).Attend(qq, kk, v);
        output.pow(2).sum().backward();
        return (output.detach(), qq.grad!, kk.grad!);
    }

    public static TheoryData<int, int, bool, int, int, int> Cases => new()
    {
        { 8, 4, false, 0, 9, 8 },    // causal, grouped heads (stories260K's layout), one score block
        { 8, 4, false, 0, 37, 8 },   // causal in 8 query blocks, the last one short
        { 4, 4, false, 0, 37, 16 },  // causal in 4 query blocks
        { 4, 4, true, 0, 9, 8 },     // left padding
        { 8, 2, true, 0, 9, 8 },     // padding and groups of four
        { 4, 4, false, 5, 9, 8 },    // a cached prefix of 5 positions
    };

    [Theory, MemberData(nameof(Cases))]
    public void Math_and_fused_attention_agree(int heads, int kvHeads, bool padded, int past, int t, int hd)
    {
        manual_seed(3);
        const int batch = 2;
        var s = past + t;
        var q = randn(batch, heads, t, hd);
        var k = randn(batch, kvHeads, s, hd);
        var v = randn(batch, kvHeads, s, hd);
        Tensor? mask = null;
        if (padded)
        {
            mask = ones(batch, s, dtype: ScalarType.Int64);
            mask[1, ..3] = tensor(0L);
        }
        var plan = AttentionPlan.Create(mask, past, t, q.device);
        var fused = Run(AttentionKernel.Fused, plan, q, k, v);
        var math = Run(AttentionKernel.Math, plan, q, k, v);
        foreach (var (a, b, what) in new[] { (fused.Out, math.Out, "output"), (fused.GradQ, math.GradQ, "dq"), (fused.GradK, math.GradK, "dk") })
        {
            var diff = (a - b).abs().max().item<float>();
            Assert.True(diff < 1e-5, $"{what}: max |Δ| = {diff:E2}");
        }
        // The test can fail: a plan without the mask attends elsewhere.
        if (padded || past > 0)
        {
            var unmasked = Run(AttentionKernel.Math, new AttentionPlan(null, false), q, k, v);
            Assert.True((unmasked.Out - math.Out).abs().max().item<float>() > 1e-3);
        }
    }
}
