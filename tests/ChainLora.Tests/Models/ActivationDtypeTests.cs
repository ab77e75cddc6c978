using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>
/// bf16 activations (transformers' layout of a bf16 model, the GPU default) compute the fp32 residual
/// stream's function to bf16 rounding, train the same way, and checkpoint exactly; auto picks fp32 on the CPU.
/// </summary>
public class ActivationDtypeTests
{
    static CausalLM Build(string architecture, ScalarType storage = ScalarType.BFloat16)
    {
        manual_seed(5);
        CausalLM model = architecture == "llama"
            ? new LlamaForCausalLM(TinyModels.LlamaConfig, storage)
            : new OptForCausalLM(TinyModels.OptConfig, storage);
        using var _ = no_grad();
        // Biases and norm weights away from their zero / one init, so their casts matter.
        foreach (var (name, p) in model.named_parameters())
            if (p.dim() == 1) p.add_(randn_like(p) * 0.1);
        return model;
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("opt")]
    public void Bf16_activations_give_the_fp32_streams_logits_to_bf16_rounding(string architecture)
    {
        using var model = Build(architecture);
        var ids = TinyModels.Tokens(3, batch: 2, length: 16);
        using var _ = no_grad();
        model.ActivationDtype = ScalarType.Float32;
        var reference = model.Forward(ids);
        model.ActivationDtype = ScalarType.BFloat16;
        var hidden = model.ForwardHidden(ids);
        var logits = model.Forward(ids);

        Assert.Equal(ScalarType.BFloat16, hidden.dtype);
        Assert.Equal(ScalarType.Float32, logits.dtype);
        var relative = ((logits - reference).norm() / reference.norm()).item<float>();
        // bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per value) through two layers.
        Assert.InRange(relative, 1e-5, 3e-2);
        Assert.True(logits.argmax(-1).eq(reference.argmax(-1)).to(ScalarType.Float32).mean().item<float>() > 0.9);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("opt")]
    public void A_bf16_activation_chain_trains_like_the_fp32_one_and_checkpointing_changes_nothing(string architecture)
    {
        double[] Losses(ActivationPrecision activations, bool checkpointing)
        {
            using var model = Build(architecture);
            var options = new TrainerOptions
            {
                Method = TrainingMethod.Cola, LearningRate = 3e-3, Epochs = 2, Seed = 4, Activations = activations,
                GradientCheckpointing = checkpointing,
            };
            var trainer = new ChainTrainer(model, options, new LoraConfig(), new ChainConfig { Length = 2 });
            var result = trainer.Train(new RandomLmData(batches: 4));
            Assert.Equal(activations == ActivationPrecision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float32, model.ActivationDtype);
            return result.StepLosses.ToArray();
        }

        var fp32 = Losses(ActivationPrecision.Fp32, checkpointing: false);
        var bf16 = Losses(ActivationPrecision.Bf16, checkpointing: false);
        var bf16Checkpointed = Losses(ActivationPrecision.Bf16, checkpointing: true);

        Assert.Equal(fp32.Length, bf16.Length);
        foreach (var (a, b) in fp32.Zip(bf16)) Assert.InRange(Math.Abs(a - b), 0, 0.02 * Math.Abs(a));
        // The second epoch sees the first's four batches again, after learning from them.
        Assert.True(bf16[4..].Average() < bf16[..4].Average(), $"the loss falls: {bf16[..4].Average()} -> {bf16[4..].Average()}");
        // The recomputed layer runs the same bf16 kernels on the same input.
        Assert.Equal(bf16, bf16Checkpointed);
    }

    [Fact]
    public void Auto_keeps_fp32_activations_on_the_cpu_whatever_the_storage_dtype()
    {
        using var model = Build("llama");
        Assert.Equal(ScalarType.Float32, ActivationPrecisions.Resolve(ActivationPrecision.Auto, model));
        Assert.Equal(ScalarType.BFloat16, ActivationPrecisions.Resolve(ActivationPrecision.Bf16, model));
        Assert.Equal(ScalarType.Float32, ActivationPrecisions.Resolve(ActivationPrecision.Fp32, model));
    }

    [Fact]
    public void Lora_starts_from_the_cpu_generator_so_a_seed_starts_the_same_chain_on_any_device()
    {
        using var model = Build("llama", ScalarType.Float32);
        manual_seed(11);
        var adapters = LoraAdapters.Inject(model, new LoraConfig { Rank = 4 });
        var first = adapters.Layers.Values.First();

        // The same draw made by hand on the CPU: A is Kaiming-uniform (a = sqrt 5) from the CPU generator.
        manual_seed(11);
        using var expected = empty(4, first.Base.InFeatures, device: CPU);
        nn.init.kaiming_uniform_(expected, a: Math.Sqrt(5));
        Assert.Equal(expected.data<float>().ToArray(), first.A.cpu().data<float>().ToArray());
        Assert.Equal(0f, first.B.abs().max().item<float>());
    }

    [Fact]
    public void A_knot_check_frees_its_fp32_copy_of_the_weight_at_once()
    {
        using var model = Build("llama");
        var adapters = LoraAdapters.Inject(model, new LoraConfig());
        var layer = adapters.Layers.Values.First();
        using var scope = NewDisposeScope();
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Null(layer.KnotRefusal());
        // Each layer's fp32 copy used to live until the knot's end: 8 GB for Llama-2-7B's 64 adapted projections.
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
