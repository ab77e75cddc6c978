// Mirrors transformers' modeling_opt.py (OPTAttention, OPTDecoderLayer, OPTDecoder,
// OPTForCausalLM) with identical parameter names, so safetensors load 1:1.
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class OptAttention : nn.Module
{
    readonly Linear q_proj, k_proj, v_proj, out_proj;
    readonly int heads, headDim;

    public OptAttention(OptConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(OptAttention))
    {
        (heads, headDim) = (c.NumAttentionHeads, c.HeadDim);
        q_proj = new Linear(c.HiddenSize, c.HiddenSize, c.EnableBias, dtype, device, init);
        k_proj = new Linear(c.HiddenSize, c.HiddenSize, c.EnableBias, dtype, device, init);
        v_proj = new Linear(c.HiddenSize, c.HiddenSize, c.EnableBias, dtype, device, init);
        out_proj = new Linear(c.HiddenSize, c.HiddenSize, c.EnableBias, dtype, device, init);
        RegisterComponents();
    }

    // x (B, T, D) -> (B, T, D); SDPA's default 1/sqrt(hd) scaling equals OPT's scaling of q.
    public Tensor Forward(Tensor x, AttentionPlan plan, KvCache? cache, int layer)
    {
        var (b, t) = (x.shape[0], x.shape[1]);
        var q = q_proj.call(x).view(b, t, heads, headDim).transpose(1, 2);    // (B, H, T, hd)
        var k = k_proj.call(x).view(b, t, heads, headDim).transpose(1, 2);
        var v = v_proj.call(x).view(b, t, heads, headDim).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        var y = plan.Attend(q, k, v);
        return out_proj.call(y.transpose(1, 2).reshape(b, t, heads * headDim));
    }
}

public sealed class OptDecoderLayer : nn.Module
{
    /// <summary>
    /// <paramref name="norm"/>(x) in x's dtype. The fp32 weight and bias are rounded to bf16
    /// activations (as in a bf16 transformers model): libtorch's CUDA layer_norm takes one dtype.
    /// </summary>
    internal static Tensor Norm(LayerNorm norm, Tensor x) => norm.weight is { } weight && weight.dtype != x.dtype
        ? nn.functional.layer_norm(x, norm.normalized_shape, weight.to(x.dtype), norm.bias?.to(x.dtype), norm.eps)
        : norm.call(x);

    readonly OptAttention self_attn;
    readonly LayerNorm self_attn_layer_norm, final_layer_norm;
    readonly Linear fc1, fc2;
    readonly bool preNorm;

    public OptDecoderLayer(OptConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(OptDecoderLayer))
    {
        preNorm = c.DoLayerNormBefore;
        self_attn = new OptAttention(c, dtype, device, init);
        self_attn_layer_norm = nn.LayerNorm(c.HiddenSize, elementwise_affine: c.LayerNormElementwiseAffine, device: device);
        fc1 = new Linear(c.HiddenSize, c.FfnDim, c.EnableBias, dtype, device, init);
        fc2 = new Linear(c.FfnDim, c.HiddenSize, c.EnableBias, dtype, device, init);
        final_layer_norm = nn.LayerNorm(c.HiddenSize, elementwise_affine: c.LayerNormElementwiseAffine, device: device);
        RegisterComponents();
    }

    // Pre-LN: h + f(norm(h)); post-LN (OPT-350m): norm(h + f(h)).
    public Tensor Forward(Tensor x, AttentionPlan plan, KvCache? cache, int layer)
    {
        var h = x + self_attn.Forward(preNorm ? Norm(self_attn_layer_norm, x) : x, plan, cache, layer);
        if (!preNorm) h = Norm(self_attn_layer_norm, h);
        var ffnIn = preNorm ? Norm(final_layer_norm, h) : h;
        h = h + fc2.call(nn.functional.relu(fc1.call(ffnIn)));
        return preNorm ? h : Norm(final_layer_norm, h);
    }
}

public sealed class OptDecoder : nn.Module
{
    readonly Embedding embed_tokens, embed_positions;
    readonly Linear? project_in, project_out;
    readonly LayerNorm? final_layer_norm;
    readonly ModuleList<OptDecoderLayer> layers;

    public OptDecoder(OptConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(OptDecoder))
    {
        embed_tokens = Embeddings.Create(c.VocabSize, c.EmbedDim, dtype, device, init);
        embed_positions = Embeddings.Create(c.MaxPositionEmbeddings + OptConfig.PositionOffset, c.HiddenSize, dtype, device, init);
        if (c.EmbedDim != c.HiddenSize)
        {
            project_out = new Linear(c.HiddenSize, c.EmbedDim, false, dtype, device, init);
            project_in = new Linear(c.EmbedDim, c.HiddenSize, false, dtype, device, init);
        }
        if (c.HasFinalLayerNorm)
            final_layer_norm = nn.LayerNorm(c.HiddenSize, elementwise_affine: c.LayerNormElementwiseAffine, device: device);
        layers = new ModuleList<OptDecoderLayer>(
            Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new OptDecoderLayer(c, dtype, device, init)).ToArray());
        RegisterComponents();
    }

    internal Embedding EmbedTokens => embed_tokens;

    // ids (B, T) -> hidden (B, T, word_embed_proj_dim) in the activation dtype
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache, bool checkpointLayers, AttentionKernel kernel, ScalarType activations)
    {
        var (b, t) = (inputIds.shape[0], inputIds.shape[1]);
        var past = cache?.Length ?? 0;
        var plan = AttentionPlan.Create(attentionMask, past, t, inputIds.device, kernel);
        var positions = Positions.Of(attentionMask, b, past, t, inputIds.device) + OptConfig.PositionOffset;
        var h = embed_tokens.call(inputIds).to(activations);
        if (project_in is not null) h = project_in.call(h);
        h = h + embed_positions.call(positions).to(activations);
        var checkpoint = ActivationCheckpoint.For(checkpointLayers, cache);
        for (var i = 0; i < layers.Count; i++)
        {
            var (layer, index) = (layers[i], i);
            h = DecoderLayers.Run(layer, x => layer.Forward(x, plan, cache, index), h, cache, checkpoint);
        }
        if (final_layer_norm is not null) h = OptDecoderLayer.Norm(final_layer_norm, h);
        return project_out is not null ? project_out.call(h) : h;
    }
}

public sealed class OptModel : nn.Module
{
    readonly OptDecoder decoder;

    public OptModel(OptConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(OptModel))
    {
        decoder = new OptDecoder(c, dtype, device, init);
        RegisterComponents();
    }

    internal OptDecoder Decoder => decoder;
}

/// <summary>OPT with lm_head tied to model.decoder.embed_tokens (as every OPT checkpoint).</summary>
public sealed class OptForCausalLM : CausalLM
{
    readonly OptModel model;

    public OptConfig Config { get; }

    public OptForCausalLM(OptConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null, bool initialize = true)
        : base(nameof(OptForCausalLM))
    {
        Config = config.Validate();
        model = new OptModel(config, dtype, device, initialize);
        RegisterComponents();
    }

    public override int VocabSize => Config.VocabSize;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override int NumLayers => Config.NumHiddenLayers;
    public override int HiddenSize => Config.HiddenSize;
    public override string ModelType => "opt";

    public override Tensor ForwardHidden(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null) =>
        model.Decoder.Forward(inputIds, attentionMask, cache, GradientCheckpointing, AttentionKernel, ActivationDtype);

    public override Tensor ComputeLogits(Tensor hidden) => Linear.Apply(hidden, model.Decoder.EmbedTokens.weight!).to(ScalarType.Float32);
}
