// Mirrors transformers' modeling_llama.py (LlamaAttention, LlamaMLP, LlamaDecoderLayer,
// LlamaModel, LlamaForCausalLM) with identical parameter names, so safetensors load 1:1, and the
// families transformers derives from it in modular_*.py, by the options of LlamaFamily.cs:
//   Mistral   sliding_window (the attention mask, in training, scoring and cached generation)
//   Qwen2     a bias on q, k and v
//   Qwen3     q_norm and k_norm (RMSNorm over each head) before the rotation; head_dim
//   Gemma     embeddings times sqrt(hidden_size), (1 + w) RMSNorm, a GELU-gated MLP, head_dim, tied head
//   Phi-3     fused qkv_proj and gate_up_proj; sliding_window; partial rotary
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

public sealed class LlamaAttention : nn.Module
{
    readonly Linear? q_proj, k_proj, v_proj;
    readonly Linear? qkv_proj;     // Phi-3: q, k and v rows stacked in that order
    readonly Linear o_proj;
    readonly RmsNorm? q_norm, k_norm;
    readonly int heads, kvHeads, headDim;

    public LlamaAttention(LlamaConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(LlamaAttention))
    {
        var family = c.Family;
        (heads, kvHeads, headDim) = (c.NumAttentionHeads, c.KeyValueHeads, c.HeadSize);
        var qkvBias = family.QkvBias || c.AttentionBias;
        if (family.FusedProjections)
            qkv_proj = new Linear(c.HiddenSize, (heads + 2 * kvHeads) * headDim, qkvBias, dtype, device, init);
        else
        {
            q_proj = new Linear(c.HiddenSize, heads * headDim, qkvBias, dtype, device, init);
            k_proj = new Linear(c.HiddenSize, kvHeads * headDim, qkvBias, dtype, device, init);
            v_proj = new Linear(c.HiddenSize, kvHeads * headDim, qkvBias, dtype, device, init);
        }
        o_proj = new Linear(heads * headDim, c.HiddenSize, c.AttentionBias, dtype, device, init);
        if (family.QkNorm)
        {
            q_norm = new RmsNorm(headDim, c.RmsNormEps, device);
            k_norm = new RmsNorm(headDim, c.RmsNormEps, device);
        }
        RegisterComponents();
    }

    // x (B, T, D) -> (B, T, D)
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionPlan plan, KvCache? cache, int layer)
    {
        var (b, t) = (x.shape[0], x.shape[1]);
        var (q, k, v) = Project(x);
        q = q.view(b, t, heads, headDim);                                      // (B, T, H, hd)
        k = k.view(b, t, kvHeads, headDim);                                    // (B, T, KV, hd)
        if (q_norm is not null) (q, k) = (q_norm.call(q), k_norm!.call(k));
        q = RotaryEmbedding.Apply(q.transpose(1, 2), cos, sin);                // (B, H, T, hd)
        k = RotaryEmbedding.Apply(k.transpose(1, 2), cos, sin);                // (B, KV, T, hd)
        v = v.view(b, t, kvHeads, headDim).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        var y = plan.Attend(q, k, v);                                          // (B, H, T, hd)
        return o_proj.call(y.transpose(1, 2).reshape(b, t, heads * headDim));
    }

    (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        if (qkv_proj is null) return (q_proj!.call(x), k_proj!.call(x), v_proj!.call(x));
        var qkv = qkv_proj.call(x);                                            // (B, T, (H + 2 KV) hd)
        var (q, kv) = (heads * headDim, kvHeads * headDim);
        return (qkv.narrow(-1, 0, q), qkv.narrow(-1, q, kv), qkv.narrow(-1, q + kv, kv));
    }
}

public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    readonly Linear? gate_proj, up_proj;
    readonly Linear? gate_up_proj; // Phi-3: gate rows, then up rows
    readonly Linear down_proj;
    readonly Func<Tensor, Tensor> activation;

    public LlamaMlp(LlamaConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(LlamaMlp))
    {
        if (c.Family.FusedProjections)
            gate_up_proj = new Linear(c.HiddenSize, 2 * c.IntermediateSize, c.MlpBias, dtype, device, init);
        else
        {
            gate_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype, device, init);
            up_proj = new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype, device, init);
        }
        down_proj = new Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, dtype, device, init);
        activation = Activation(c.Activation);
        RegisterComponents();
    }

    /// <summary>transformers' ACT2FN for the activations the families use.</summary>
    static Func<Tensor, Tensor> Activation(string name) => name switch
    {
        "silu" => x => x.silu(),
        "gelu" => x => x.gelu(),
        "gelu_pytorch_tanh" or "gelu_new" => x => x.gelu(GELU.Approximate.tanh),
        _ => throw new ArgumentException($"config field 'hidden_act' = {name}: not supported"),
    };

    // Gated: down(act(gate(x)) * up(x))
    public override Tensor forward(Tensor x)
    {
        if (gate_up_proj is null) return down_proj.call(activation(gate_proj!.call(x)) * up_proj!.call(x));
        var gateUp = gate_up_proj.call(x).chunk(2, -1);
        return down_proj.call(activation(gateUp[0]) * gateUp[1]);
    }
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
        input_layernorm = Norm(c, device);
        post_attention_layernorm = Norm(c, device);
        RegisterComponents();
    }

    internal static RmsNorm Norm(LlamaConfig c, Device? device) => new(c.HiddenSize, c.RmsNormEps, device, unitOffset: c.Family.GemmaNorms);

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
    readonly double? embeddingScale;   // Gemma: sqrt(hidden_size)
    readonly int? window;

    public LlamaModel(LlamaConfig c, ScalarType dtype, Device? device, bool init) : base(nameof(LlamaModel))
    {
        embed_tokens = Embeddings.Create(c.VocabSize, c.HiddenSize, dtype, device, init);
        layers = new ModuleList<LlamaDecoderLayer>(
            Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(c, dtype, device, init)).ToArray());
        norm = LlamaDecoderLayer.Norm(c, device);
        embeddingScale = c.Family.GemmaNorms ? Math.Sqrt(c.HiddenSize) : null;
        window = c.AttentionWindow;
        RegisterComponents();
    }

    internal Embedding EmbedTokens => embed_tokens;

    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache, RotaryEmbedding rope, bool checkpointLayers, AttentionKernel kernel,
        ScalarType activations)
    {
        var (b, t) = (inputIds.shape[0], inputIds.shape[1]);
        var past = cache?.Length ?? 0;
        var plan = AttentionPlan.Create(attentionMask, past, t, inputIds.device, kernel, window);
        var (cos, sin) = rope.For(Positions.Of(attentionMask, b, past, t, inputIds.device), activations);
        var h = embed_tokens.call(inputIds).to(activations);                    // (B, T, D)
        // GemmaModel: the normalizer is a tensor in the activations' dtype, so sqrt(3072) rounds in bf16.
        if (embeddingScale is { } scale) h = h * tensor(scale, activations, h.device);
        var checkpoint = ActivationCheckpoint.For(checkpointLayers, cache);
        for (var i = 0; i < layers.Count; i++)
        {
            var (layer, index) = (layers[i], i);
            h = DecoderLayers.Run(layer, x => layer.Forward(x, cos, sin, plan, cache, index), h, cache, checkpoint);
        }
        return norm.call(h);
    }
}

/// <summary>A Llama-architecture causal LM of any family of <see cref="LlamaFamily"/>, named by its model_type.</summary>
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
        rope = new RotaryEmbedding(config.RotaryDim, config.RopeTheta, config.RopeScaling, config.MaxPositionEmbeddings);
        RegisterComponents();
    }

    public override int VocabSize => Config.VocabSize;
    public override int MaxPositions => Config.MaxPositionEmbeddings;
    public override int NumLayers => Config.NumHiddenLayers;
    public override int HiddenSize => Config.HiddenSize;
    public override string ModelType => Config.ModelType;

    public override Tensor ForwardHidden(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null) =>
        model.Forward(inputIds, attentionMask, cache, rope, GradientCheckpointing, AttentionKernel, ActivationDtype);

    public override Tensor ComputeLogits(Tensor hidden) => (lm_head is not null
        ? lm_head.call(hidden)
        : Linear.Apply(hidden, model.EmbedTokens.weight!)).to(ScalarType.Float32);
}
