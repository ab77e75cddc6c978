using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>
/// A decoder-only language model with Hugging Face parameter names. Matrices may be stored in bf16
/// (frozen weights), in which case each matmul runs in bf16; the residual stream and the
/// activations between matmuls are kept in <see cref="ActivationDtype"/>.
/// </summary>
public abstract class CausalLM : nn.Module
{
    protected CausalLM(string name) : base(name) { }

    public abstract int VocabSize { get; }
    /// <summary>Longest sequence the position encoding supports.</summary>
    public abstract int MaxPositions { get; }
    public abstract int NumLayers { get; }
    /// <summary>Width of the (fp32) residual stream.</summary>
    public abstract int HiddenSize { get; }
    /// <summary>The HF model_type: "opt", or a Llama-derived family ("llama", "mistral", "qwen2", ...).</summary>
    public abstract string ModelType { get; }

    /// <summary>
    /// Final hidden states (B, T, D) in <see cref="ActivationDtype"/> for <paramref name="inputIds"/> (B, T) int64.
    /// <paramref name="attentionMask"/> (B, past + T), 1 for real tokens and 0 for left padding,
    /// covers the cached positions too; null means no padding.
    /// </summary>
    public abstract Tensor ForwardHidden(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null);

    /// <summary>(..., D) hidden states to (..., V) fp32 logits (formed in the head's dtype, then widened).</summary>
    public abstract Tensor ComputeLogits(Tensor hidden);

    /// <summary>Logits (B, T, V) fp32.</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null) =>
        ComputeLogits(ForwardHidden(inputIds, attentionMask, cache));

    /// <summary>
    /// Activation checkpointing: a forward that autograd records, without a KV cache, keeps only
    /// each decoder layer's input and runs the layer again during backward (see
    /// <see cref="ActivationCheckpoint"/>). Loss and gradients are the same; activation memory drops
    /// to about two (B, T, D) tensors per layer for one more forward pass of compute. Dropout
    /// replays its masks from the CPU generator's state; on CUDA it cannot (see the trainer's check).
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>How attention is computed (<see cref="Models.AttentionKernel"/>): Auto picks the faster kernel per shape.</summary>
    public AttentionKernel AttentionKernel { get; set; } = AttentionKernel.Auto;

    /// <summary>
    /// The dtype of the residual stream and the activations between matmuls. fp32 (the default)
    /// rounds only each matmul's inputs: on a CPU bf16 element-wise kernels are slower than fp32
    /// ones and the casts are cheap. bf16 keeps them as transformers does in a bf16 model (norms
    /// and softmax computed in fp32, rounded back; LoRA in fp32): on a GPU it halves the activation
    /// memory and removes a cast around every matmul. Set it before the forward passes it governs.
    /// </summary>
    public ScalarType ActivationDtype { get; set; } = ScalarType.Float32;

    public KvCache NewCache() => new(NumLayers);

    public Device Device => parameters().First().device;

    /// <summary>The storage dtype of the matrices and embeddings (fp32 or bf16): the token embedding's.</summary>
    public ScalarType StorageDtype =>
        named_parameters().First(p => p.name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)).parameter.dtype;
}
