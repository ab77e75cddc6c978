// Activation (gradient) checkpointing of decoder layers, as torch.utils.checkpoint: the forward runs
// a layer without autograd and keeps only its input; the backward runs the layer again from that
// input with autograd and back-propagates through the recomputation. A layer's activations then
// cost one (B, T, D) input instead of everything its backward needs (projections, attention,
// the MLP's (B, T, I) intermediates), for one more forward pass of compute.
//
// TorchSharp has no saved-tensor hooks, so this is a custom autograd function (reentrant style).
// Its inputs are the layer input and the layer's trainable parameters, so gradients reach LoRA
// A/B, trained biases or all weights even when the input itself needs none (the first layer under
// LoRA, whose input is a frozen embedding); frozen weights are not inputs and get no gradient.
// TorchSharp's Function also allocates, and never writes, a tensor shaped like each output (to
// stand in for a missing gradient), so a checkpointed layer holds its input plus that allocation.
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>Checkpointed decoder layers of one forward pass.</summary>
internal sealed class ActivationCheckpoint
{
    readonly object gate = new();
    List<Tensor> handedOff = [];

    ActivationCheckpoint() { }

    /// <summary>
    /// A checkpoint for one forward pass when <paramref name="enabled"/>, autograd records and
    /// there is no KV cache (training); null otherwise, and the layers run as usual.
    /// </summary>
    public static ActivationCheckpoint? For(bool enabled, KvCache? cache) =>
        enabled && cache is null && is_grad_enabled() ? new ActivationCheckpoint() : null;

    /// <summary>
    /// <paramref name="layer"/>(<paramref name="x"/>), x (B, T, D) -> (B, T, D) in the activation dtype, with
    /// only x kept for the backward. <paramref name="layer"/> must be a function of x,
    /// <paramref name="module"/>'s parameters and the CPU generator alone (it runs twice).
    /// </summary>
    public Tensor Run(nn.Module module, Func<Tensor, Tensor> layer, Tensor x)
    {
        var trainable = module.parameters().Where(p => p.requires_grad).ToArray();
        return CheckpointedLayer.apply([x, new Recompute(this, layer, trainable, x.requires_grad), .. trainable]);
    }

    /// <summary>
    /// Keeps the gradients a backward returned to autograd until the next layer's backward. The
    /// engine copies them when the call returns, so the handles must outlive it, but holding them
    /// to the end of the step would keep one (B, T, D) gradient per layer alive.
    /// </summary>
    internal void HandOff(List<Tensor> returned)
    {
        lock (gate)
        {
            foreach (var t in handedOff) t.Dispose();
            handedOff = returned.Where(t => t is not null).ToList();
        }
    }

    /// <summary>What a layer's backward needs besides its saved input.</summary>
    internal sealed record Recompute(ActivationCheckpoint Owner, Func<Tensor, Tensor> Layer, Parameter[] Parameters, bool InputRequiresGrad)
    {
        /// <summary>The CPU generator's state when the forward ran, so dropout draws the same masks again.</summary>
        public byte[] RngState { get; set; } = [];
    }
}

/// <summary>
/// The autograd node of one checkpointed layer. Inputs: x, the <see cref="ActivationCheckpoint.Recompute"/>
/// record, then the trainable parameters; output: the layer's output.
/// </summary>
internal sealed class CheckpointedLayer : autograd.SingleTensorFunction<CheckpointedLayer>
{
    public override string Name => nameof(CheckpointedLayer);

    // Runs under no_grad (TorchSharp's Function.apply): nothing inside the layer is recorded. The
    // scope frees the layer's intermediates now; a handle in the caller's scope would keep them.
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var recompute = (ActivationCheckpoint.Recompute)vars[1];
        using var scope = NewDisposeScope();
        using (var state = get_rng_state()) recompute.RngState = state.data<byte>().ToArray();
        ctx.save_for_backward([x]);
        ctx.save_data(nameof(ActivationCheckpoint.Recompute), recompute);
        return recompute.Layer(x).MoveToOuterDisposeScope();
    }

    // Recomputes the layer with autograd from the saved input and the forward's generator state,
    // then restores the generator so later draws are as without checkpointing. Dropout on CUDA
    // draws from the CUDA generator, whose state TorchSharp 0.107 can neither read nor set: the
    // trainer refuses checkpointing with LoRA dropout off the CPU.
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var recompute = (ActivationCheckpoint.Recompute)ctx.get_data(nameof(ActivationCheckpoint.Recompute));
        var result = new List<Tensor>();
        using (var scope = NewDisposeScope())
        {
            var x = ctx.get_saved_variables()[0].detach().requires_grad_(recompute.InputRequiresGrad);
            Tensor y;
            var current = get_rng_state();
            set_rng_state(tensor(recompute.RngState, ScalarType.Byte, CPU));
            try
            {
                using (enable_grad()) y = recompute.Layer(x);
            }
            finally
            {
                set_rng_state(current);
            }
            List<Tensor> inputs = recompute.InputRequiresGrad ? [x, .. recompute.Parameters] : [.. recompute.Parameters];
            var grads = autograd.grad([y], inputs, [gradOutput], allow_unused: true)
                .Select(g => g.IsInvalid ? null : g.MoveToOuterDisposeScope()).ToList();
            // One gradient per input of apply: x (null when it needs none), the record (never), each parameter.
            result.Add(recompute.InputRequiresGrad ? grads[0]! : null!);
            result.Add(null!);
            result.AddRange(grads.Skip(recompute.InputRequiresGrad ? 1 : 0)!);
        }
        gradOutput.Dispose();
        recompute.Owner.HandOff(result);
        return result;
    }
}
