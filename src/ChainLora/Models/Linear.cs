// y = x W^T + b, like torch.nn.Linear, plus optional side paths whose outputs are added.
// The side paths are where adapters plug in (Lora/LoraLinear registers itself as one), so the
// frozen weight keeps its Hugging Face name (q_proj.weight) and checkpoints load 1:1.
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

    /// <summary>
    /// Weight (out, in) initialised like torch.nn.Linear (Kaiming-uniform, a = sqrt 5), or left
    /// uninitialised when <paramref name="initialize"/> is false because a checkpoint will overwrite
    /// it (Kaiming-uniform costs ~2 minutes for Llama-2-7B on 2 cores).
    /// </summary>
    public Linear(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype = ScalarType.Float32, Device? device = null,
        bool initialize = true)
        : base(nameof(Linear))
    {
        weight = new Parameter(empty(outFeatures, inFeatures, dtype: dtype, device: device));
        // Biases stay fp32 even under bf16 weights: they are tiny and may be trained (LoRA bias "all").
        if (hasBias) bias = new Parameter(empty(outFeatures, device: device));
        if (initialize)
        {
            using var _ = no_grad();
            nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
            var bound = 1.0 / Math.Sqrt(inFeatures);
            bias?.uniform_(-bound, bound);
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
    /// x W^T + b where W may be stored in another dtype (bf16 frozen weights). The result comes
    /// back in x's dtype, so an fp32 residual stream stays fp32. Two ways to mix dtypes: run the
    /// matmul in W's dtype (cast x in and y out: N (in + out) elements) or upcast W (in out
    /// elements) and run it in x's dtype. bf16 matmuls are about twice as fast here, but for
    /// small matrices the casts dominate; <see cref="PreferLowPrecision"/> picks the cheaper.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor? bias = null)
    {
        // Activations in the weight's dtype (bf16 on a GPU): one fused GEMM with the (small, fp32) bias rounded to it.
        if (x.dtype == weight.dtype)
            return nn.functional.linear(x, weight, bias is null || bias.dtype == weight.dtype ? bias : bias.to(weight.dtype));
        Tensor y;
        if (PreferLowPrecision(x.numel() / weight.shape[1], weight.shape[1], weight.shape[0]))
            y = nn.functional.linear(x.to(weight.dtype), weight).to(x.dtype);
        else
            y = nn.functional.linear(x, weight.to(x.dtype));
        return bias is null ? y : y + bias.to(y.dtype);
    }

    /// <summary>
    /// Cost model for <paramref name="rows"/> x (in) times W (out, in): the matmul time saved in
    /// bf16, 2 N in out (1/P_fp32 - 1/P_bf16), against the extra casting, c (N (in + out) - in out).
    /// P_fp32 ~ 200 and P_bf16 ~ 440 GFLOP/s and c ~ 1 ns per element were measured on the
    /// 2-core development CPU (chainlora bench reports the peaks); only their ratio matters much.
    /// </summary>
    public static bool PreferLowPrecision(long rows, long inFeatures, long outFeatures)
    {
        const double savedPerFlop = 1 / 200e9 - 1 / 440e9;
        const double castPerElement = 1e-9;
        var saved = 2.0 * rows * inFeatures * outFeatures * savedPerFlop;
        var extra = castPerElement * (rows * (inFeatures + outFeatures) - inFeatures * outFeatures);
        return saved > extra;
    }
}
