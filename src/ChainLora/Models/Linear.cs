// y = x W^T + b, like torch.nn.Linear, plus optional side paths whose outputs are added.
// The side paths are where adapters plug in (Lora/LoraLinear registers itself as one), so the
// frozen weight keeps its Hugging Face name (q_proj.weight) and checkpoints load 1:1.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class Linear : nn.Module<Tensor, Tensor>
{
    // Field names are the HF parameter names; TorchSharp finds fields by name when it moves them.
    Parameter weight;
    Parameter? bias;
    readonly List<nn.Module<Tensor, Tensor>> sidePaths = [];

    public Parameter Weight => weight;
    public Parameter? Bias => bias;
    public long InFeatures => weight.shape[1];
    public long OutFeatures => weight.shape[0];

    /// <summary>Weight (out, in) initialised like torch.nn.Linear (Kaiming-uniform, a = sqrt 5).</summary>
    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(Linear))
    {
        weight = new Parameter(empty(outFeatures, inFeatures, dtype: dtype, device: device));
        using (no_grad())
        {
            nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
            if (hasBias)
            {
                var bound = 1.0 / Math.Sqrt(inFeatures);
                // Biases stay fp32 even under bf16 weights: they are tiny and may be trained (LoRA bias "all").
                bias = new Parameter(empty(outFeatures, device: device).uniform_(-bound, bound));
            }
        }
        register_parameter("weight", weight);
        if (bias is not null) register_parameter("bias", bias);
    }

    /// <summary>The side paths currently attached (e.g. one LoRA link).</summary>
    public IReadOnlyList<nn.Module<Tensor, Tensor>> SidePaths => sidePaths;

    /// <summary>Adds <paramref name="path"/> (x -> delta y) under <paramref name="name"/>; its parameters join this module's.</summary>
    public void Attach(string name, nn.Module<Tensor, Tensor> path)
    {
        register_module(name, path);
        sidePaths.Add(path);
    }

    // (..., in) -> (..., out)
    public override Tensor forward(Tensor x)
    {
        var y = Apply(x, weight, bias);
        foreach (var path in sidePaths) y = y + path.call(x);
        return y;
    }

    /// <summary>
    /// x W^T + b where W may be stored in another dtype (bf16 frozen weights): the matmul runs in
    /// W's dtype and the result comes back in x's dtype, so the residual stream keeps fp32.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias = null)
    {
        if (x.dtype == weight.dtype && (bias is null || bias.dtype == weight.dtype))
            return nn.functional.linear(x, weight, bias);
        var y = nn.functional.linear(x.to(weight.dtype), weight).to(x.dtype);
        return bias is null ? y : y + bias;
    }
}
