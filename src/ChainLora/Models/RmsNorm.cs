// Mirrors HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in fp32 and returned in
// x's dtype (HF rounds before the weight multiplies; here the weight is fp32 and multiplies first).
// GemmaRMSNorm scales by (1 + weight) instead, its weight starting at zero, and multiplies in fp32
// before rounding, as here.
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    Parameter weight; // HF name
    readonly double eps;
    readonly bool unitOffset;

    public RmsNorm(long dim, double eps, Device? device = null, bool unitOffset = false) : base(nameof(RmsNorm))
    {
        weight = new Parameter(unitOffset ? zeros(dim, device: device) : ones(dim, device: device));
        (this.eps, this.unitOffset) = (eps, unitOffset);
        RegisterComponents();
    }

    // (..., dim) -> (..., dim) in x's dtype
    public override Tensor forward(Tensor x)
    {
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * (x32.pow(2).mean([-1], keepdim: true) + eps).rsqrt();
        var scale = weight.to(ScalarType.Float32);
        return (normed * (unitOffset ? 1.0 + scale : scale)).to(x.dtype);
    }
}
