using ChainLora.Chain;
using ChainLora.Evaluation;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Tasks;
using ChainLora.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>Activation checkpointing changes what a forward keeps, never the loss or a gradient.</summary>
public class GradientCheckpointingTests
{
    // Llama with grouped KV heads (4 query heads, 2 KV heads) and OPT; LoRA on q_proj and v_proj
    // (OPT also training those layers' biases), or full fine-tuning; LoRA dropout on and off.
    public static TheoryData<string, string, double> Cases => new()
    {
        { "llama", "lora", 0 }, { "llama", "lora", 0.1 }, { "llama", "full", 0 },
        { "opt", "lora", 0 }, { "opt", "lora", 0.1 }, { "opt", "full", 0 },
    };

    static CausalLM Build(string architecture, string mode, double dropout, ScalarType dtype = ScalarType.Float32)
    {
        CausalLM model = architecture == "llama" ? TinyModels.Llama(seed: 3, dtype) : TinyModels.Opt(seed: 3);
        if (mode == "full")
        {
            foreach (var p in model.parameters()) p.requires_grad = true;
        }
        else
        {
            var adapters = LoraAdapters.Inject(model, new LoraConfig
            {
                Dropout = dropout, Bias = architecture == "opt" ? LoraBias.LoraOnly : LoraBias.None,
            });
            // B starts at zero, which would leave A without gradient: give both values.
            using var _ = no_grad();
            foreach (var layer in adapters.Layers.Values) layer.B.normal_(0, 0.1);
        }
        model.train();
        return model;
    }

    /// <summary>Two rows, the second left-padded, so attention runs with a padding mask.</summary>
    static LmBatch Batch()
    {
        var ids = TinyModels.Tokens(21, batch: 2, length: 10);
        var mask = ones(2, 10, dtype: ScalarType.Int64);
        mask[1, ..3] = 0;
        var targets = cat([ids[.., 1..], full(2, 1, -100L, dtype: ScalarType.Int64)], 1);
        targets[1, ..3] = -100;
        return new LmBatch(ids, targets, mask);
    }

    static (float Loss, Dictionary<string, Tensor> Grads) LossAndGradients(CausalLM model, bool checkpointing)
    {
        model.GradientCheckpointing = checkpointing;
        foreach (var p in model.parameters()) p.grad = null;
        manual_seed(99);
        var loss = Batch().Loss(model);
        loss.backward();
        var grads = model.named_parameters().Where(p => p.parameter.requires_grad)
            .ToDictionary(p => p.name, p => p.parameter.grad?.clone() ?? throw new InvalidOperationException($"{p.name}: no gradient"));
        return (loss.item<float>(), grads);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Loss_and_every_gradient_equal_the_plain_path(string architecture, string mode, double dropout)
    {
        using var model = Build(architecture, mode, dropout);
        var plain = LossAndGradients(model, checkpointing: false);
        var checkpointed = LossAndGradients(model, checkpointing: true);

        Assert.Equal(plain.Loss, checkpointed.Loss, 1e-6 * Math.Abs(plain.Loss));
        Assert.Equal(plain.Grads.Keys.Order(), checkpointed.Grads.Keys.Order());
        foreach (var (name, g) in plain.Grads)
        {
            var scale = g.abs().max().item<float>();
            var diff = (g - checkpointed.Grads[name]).abs().max().item<float>();
            Assert.True(scale > 0, $"{name}: zero gradient, the comparison would prove nothing");
            Assert.True(diff <= 1e-6 * scale, $"{name}: gradients differ by {diff} (largest entry {scale})");
        }
        // The test can fail: with dropout the masks matter (another seed changes the loss).
        if (dropout > 0)
        {
            manual_seed(100);
            Assert.NotEqual(plain.Loss, Batch().Loss(model).item<float>());
        }
    }

    [Fact]
    public void Frozen_bf16_weights_get_no_gradient()
    {
        using var model = Build("llama", "lora", 0.1, ScalarType.BFloat16);
        var (_, grads) = LossAndGradients(model, checkpointing: true);
        Assert.Equal(2 * 2 * 2, grads.Count);   // 2 layers x (q_proj, v_proj) x (A, B)
        foreach (var (name, p) in model.named_parameters())
            if (!p.requires_grad) Assert.True(p.grad is null, $"{name} is frozen but got a gradient");
    }

    /// <summary>
    /// Each layer's MLP reports whether autograd recorded it: checkpointed, the forward runs it
    /// with autograd off (so nothing inside the layer is kept) and the backward runs it again with
    /// autograd on. If checkpointing silently did nothing, the forward calls would record.
    /// </summary>
    [Theory]
    [InlineData("llama", "mlp")]
    [InlineData("opt", "fc1")]
    public void Checkpointed_layers_run_without_autograd_then_again_in_backward(string architecture, string probe)
    {
        using var model = Build(architecture, "lora", 0);
        var calls = new List<(bool Recorded, bool OutputNeedsGrad)>();
        foreach (var (name, module) in model.named_modules())
            if (name.EndsWith("." + probe, StringComparison.Ordinal))
                ((nn.Module<Tensor, Tensor>)module).register_forward_hook((_, _, output) =>
                {
                    calls.Add((is_grad_enabled(), output.requires_grad));
                    return output;
                });
        var layers = model.NumLayers;

        model.GradientCheckpointing = false;
        Batch().Loss(model).backward();
        Assert.Equal(Enumerable.Repeat((true, true), layers), calls);

        calls.Clear();
        model.GradientCheckpointing = true;
        var loss = Batch().Loss(model);
        Assert.True(loss.requires_grad);
        Assert.Equal(Enumerable.Repeat((false, false), layers), calls);
        loss.backward();
        Assert.Equal(Enumerable.Repeat((false, false), layers).Concat(Enumerable.Repeat((true, true), layers)), calls);

        // Inference (no autograd) and cached decoding run each layer once, as without checkpointing.
        calls.Clear();
        using (no_grad()) model.Forward(TinyModels.Tokens(3));
        using (var cache = model.NewCache()) model.Forward(TinyModels.Tokens(3), cache: cache);
        Assert.Equal(2 * layers, calls.Count);
        Assert.Equal(Enumerable.Repeat((true, true), layers), calls.Skip(layers));
    }

    /// <summary>
    /// TorchSharp keeps every tensor a forward creates alive while its handle sits in a dispose
    /// scope, so the layers' intermediates must not reach the caller's scope, or checkpointing
    /// would save nothing (and a plain step would hold every layer's temporaries) until the step
    /// ends. A plain layer leaves its output's handle; a checkpointed one also the two of TorchSharp's
    /// Function.apply (its output-shaped stand-in among them); the layer's own intermediates, ~12
    /// handles a layer here, must not be among them.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Each_layer_leaves_at_most_its_output_in_the_callers_scope(bool checkpointing)
    {
        int Handles(int layers)
        {
            using var model = new LlamaForCausalLM(TinyModels.LlamaConfig with { NumHiddenLayers = layers });
            LoraAdapters.Inject(model, new LoraConfig { Dropout = 0.1 });
            model.train();
            model.GradientCheckpointing = checkpointing;
            var ids = TinyModels.Tokens(5);
            using var scope = NewDisposeScope();
            model.ForwardHidden(ids);
            return scope.DisposablesCount;
        }
        var (two, six) = (Handles(2), Handles(6));
        Assert.True(six - two <= (checkpointing ? 12 : 4), $"4 more layers left {six - two} more handles ({two} with 2 layers, {six} with 6)");
    }

    /// <summary>
    /// Classification training runs a shared prompt once through a KV cache, which checkpointing
    /// cannot cover; with checkpointing on, rows run whole instead: the same scores and gradients
    /// (to float rounding), and the layers again run without autograd in the forward.
    /// </summary>
    [Fact]
    public void Shared_prompt_batches_run_whole_rows_under_checkpointing()
    {
        using var model = Build("llama", "lora", 0);
        var random = new Random(5);
        List<int> Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, 64)).ToList();
        var rows = new List<PromptAndContinuation>();
        foreach (var (prompt, candidates) in new[] { (Tokens(9), 3), (Tokens(4), 2), (Tokens(13), 1) })
            for (var c = 0; c < candidates; c++) rows.Add(new PromptAndContinuation(prompt, Tokens(1 + c)));
        var batch = SharedPromptBatch.Pack(rows, ContinuationScoring.PromptGroups(rows), CPU);
        var recorded = new List<bool>();
        foreach (var (name, module) in model.named_modules())
            if (name.EndsWith(".mlp", StringComparison.Ordinal))
                ((nn.Module<Tensor, Tensor>)module).register_forward_hook((_, _, output) => { recorded.Add(is_grad_enabled()); return output; });

        (float[] Scores, Tensor[] Grads) Run(bool checkpointing)
        {
            model.GradientCheckpointing = checkpointing;
            foreach (var p in model.parameters()) p.grad = null;
            recorded.Clear();
            var scores = batch.MeanLogProb(model);
            scores.sum().backward();
            return (scores.detach().data<float>().ToArray(), model.parameters().Where(p => p.requires_grad).Select(p => p.grad!.clone()).ToArray());
        }
        var cached = Run(false);
        Assert.Equal(2 * model.NumLayers, recorded.Count(r => r));                 // prefix pass, then tails
        var whole = Run(true);
        Assert.Equal(Enumerable.Repeat(false, model.NumLayers).Concat(Enumerable.Repeat(true, model.NumLayers)), recorded);
        for (var i = 0; i < rows.Count; i++) Assert.Equal(cached.Scores[i], whole.Scores[i], 1e-5);
        for (var i = 0; i < cached.Grads.Length; i++)
        {
            var scale = cached.Grads[i].abs().max().item<float>();
            Assert.True((cached.Grads[i] - whole.Grads[i]).abs().max().item<float>() <= 1e-4 * scale);
        }
    }

    public static TheoryData<TrainingMethod, double> TrainerCases => new() { { TrainingMethod.Lora, 0.1 }, { TrainingMethod.Full, 0 } };

    [Theory, MemberData(nameof(TrainerCases))]
    public void Three_training_steps_give_identical_losses_with_and_without_checkpointing(TrainingMethod method, double dropout)
    {
        (IReadOnlyList<double> Losses, float[] Weights) Train(bool checkpointing)
        {
            using var model = TinyModels.Llama(seed: 2);
            var options = new TrainerOptions { Method = method, LearningRate = 5e-3, Seed = 11, GradientCheckpointing = checkpointing };
            var trainer = new ChainTrainer(model, options, new LoraConfig { Dropout = dropout }, new ChainConfig());
            var result = trainer.Train(new RandomLmData(3));
            var trained = model.parameters().Where(p => p.requires_grad).Select(p => p.detach().flatten());
            return (result.StepLosses, cat(trained.ToList()).data<float>().ToArray());
        }
        var plain = Train(false);
        var checkpointed = Train(true);
        Assert.Equal(3, plain.Losses.Count);
        Assert.Equal(plain.Losses, checkpointed.Losses);
        Assert.Equal(plain.Weights, checkpointed.Weights);
    }

    [Fact]
    public void The_trainer_refuses_checkpointing_with_dropout_off_the_cpu()
    {
        using var model = new LlamaForCausalLM(TinyModels.LlamaConfig, device: new Device(DeviceType.META));
        var options = new TrainerOptions { GradientCheckpointing = true };
        var e = Assert.Throws<ArgumentException>(() => new ChainTrainer(model, options, new LoraConfig { Dropout = 0.1 }, new ChainConfig()));
        Assert.Contains("dropout", e.Message);
        _ = new ChainTrainer(model, options, new LoraConfig(), new ChainConfig());
    }
}
