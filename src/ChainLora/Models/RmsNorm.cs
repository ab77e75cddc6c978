// Mirrors HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in fp32 and returned in
// x's dtype (HF rounds before the weight multiplies; here the weight is fp32 and multiplies first).
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    Parameter weight; // HF name
    readonly double eps;

    public RmsNorm(long dim, double eps, Device? device = null) : base(nameof(RmsNorm))
    {
        weight = new Parameter(ones(dim, device: device));
        this.eps = eps;
        RegisterComponents();
    }

    // (..., dim) -> (..., dim) in x's dtype
    public override Tensor forward(Tensor x)
    {
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * (x32.pow(2).mean([-1], keepdim: true) + eps).rsqrt();
        return (normed * weight.to(ScalarType.Float32)).to(x.dtype);
    }
}
