// Mirrors transformers' modeling_llama.py (LlamaAttention, LlamaMLP, LlamaDecoderLayer,
// LlamaModel, LlamaForCausalLM) with identical parameter names, so safetensors load 1:1.
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class LlamaAttention : nn.Module
{
    readonly Linear q_proj, k_proj, v_proj, o_proj;
    readonly int heads, kvHeads, headDim;

    public LlamaAttention(LlamaConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(LlamaAttention))
    {
        (heads, kvHeads, headDim) = (c.NumAttentionHeads, c.KeyValueHeads, c.HeadDim);
        q_proj = new Linear(c.HiddenSize, heads * headDim, c.AttentionBias, dtype, device, init);
        k_proj = new Linear(c.HiddenSize, kvHeads * headDim, c.AttentionBias, dtype, device, init);
        v_proj = new Linear(c.HiddenSize, kvHeads * headDim, c.AttentionBias, dtype, device, init);
        o_proj = new Linear(heads * headDim, c.HiddenSize, c.AttentionBias, dtype, device, init);
        RegisterComponents();
    }

    // x (B, T, D) -> (B, T, D)
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionPlan plan, KvCache? cache, int layer)
    {
        var (b, t) = (x.shape[0], x.shape[1]);
        var q = q_proj.call(x).view(b, t, heads, headDim).transpose(1, 2);     // (B, H, T, hd)
        var k = k_proj.call(x).view(b, t, kvHeads, headDim).transpose(1, 2);   // (B, KV, T, hd)
        var v = v_proj.call(x).view(b, t, kvHeads, headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        var y = plan.Attend(q, k, v);                                          // (B, H, T, hd)
        return o_proj.call(y.transpose(1, 2).reshape(b, t, heads * headDim));
    }
}

public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear gate_proj, up_proj, down_proj;

    public LlamaMlp(LlamaConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(LlamaMlp))
    {
        gate_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype, device, init);
        up_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype, device, init);
        down_proj = new Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype, device, init);
        RegisterComponents();
    }

    // SwiGLU: down(silu(gate(x)) * up(x))
    public override Tensor forward(Tensor x) =>
        down_proj.call(nn.functional.silu(gate_proj.call(x)) * up_proj.call(x));
}

public sealed class LlamaDecoderLayer : nn.Module
{
    readonly LlamaAttention self_attn;
    readonly LlamaMlp mlp;
    readonly RmsNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(LlamaConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = new LlamaAttention(c, dtype, device, init);
        mlp = new LlamaMlp(c, dtype, device, init);
        input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device);
        post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionPlan plan, KvCache? cache, int layer)
    {
        var h = x + self_attn.Forward(input_layernorm.call(x), cos, sin, plan, cache, layer);
        return h + mlp.call(post_attention_layernorm.call(h));
    }
}

public sealed class LlamaModel : nn.Module
{
    readonly Embedding embed_tokens;
    readonly ModuleList<LlamaDecoderLayer> layers;
    readonly RmsNorm norm;

    public LlamaModel(LlamaConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(LlamaModel))
    {
        embed_tokens = Embeddings.Create(c.VocabSize, c.HiddenSize, dtype, device, init);
        layers = new ModuleList<LlamaDecoderLayer>(
            Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(c, dtype, device, init)).ToArray());
        norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device);
        RegisterComponents();
    }

    internal Embedding EmbedTokens => embed_tokens;

    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache, RotaryEmbedding rope, bool checkpointLayers, AttentionKernel kernel,
        ScalarType activations)
    {
        var (b, t) = (inputIds.shape[0], inputIds.shape[1]);
        var past = cache?.Length ?? 0;
        var plan = AttentionPlan.Create(attentionMask, past, t, inputIds.device, kernel);
        var (cos, sin) = rope.For(Positions.Of(attentionMask, b, past, t, inputIds.device), activations);
        var h = embed_tokens.call(inputIds).to(activations);                    // (B, T, D)
        var checkpoint = ActivationCheckpoint.For(checkpointLayers, cache);
        for (var i = 0; i < layers.Count; i++)
        {
            var (layer, index) = (layers[i], i);
            h = DecoderLayers.Run(layer, x => layer.Forward(x, cos, sin, plan, cache, index), h, cache, checkpoint);
        }
        return norm.call(h);
    }
}

public sealed class LlamaForCausalLM : CausalLM
{
    readonly LlamaModel model;
    readonly Linear? lm_head; // absent when tied to embed_tokens
    readonly RotaryEmbedding rope;

    public LlamaConfig Config { get; }

    /// <summary>
    /// A random-initialised model, or with <paramref name="initialize"/> false one whose weights are
    /// left for a checkpoint to fill (<see cref="StateDict.LoadStrict"/>, <see cref="CheckpointLayout"/>).
    /// </summary>
    public LlamaForCausalLM(LlamaConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null, bool initialize = true)
        : base(nameof(LlamaForCausalLM))
    {
        Config = config.Validate();
        model = new LlamaModel(config, dtype, device, initialize);
        if (!config.TieWordEmbeddings) lm_head = new Linear(config.HiddenSize, config.VocabSize, false, dtype, device, initialize);
        rope = new RotaryEmbedding(config.HeadDim, config.RopeTheta);
        RegisterComponents();
    }

    public override int VocabSize => Config.VocabSize;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override int NumLayers => Config.NumHiddenLayers;
    public override int HiddenSize => Config.HiddenSize;
    public override string ModelType => "llama";

    public override Tensor ForwardHidden(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null) =>
        model.Forward(inputIds, attentionMask, cache, rope, GradientCheckpointing, AttentionKernel, ActivationDtype);

    public override Tensor ComputeLogits(Tensor hidden) => (lm_head is not null
        ? lm_head.call(hidden)
        : Linear.Apply(hidden, model.EmbedTokens.weight!)).to(ScalarType.Float32);
}
