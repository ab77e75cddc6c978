using ChainLora.Chain;
using ChainLora.Evaluation;
using ChainLora.Export;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Objectives;
using ChainLora.Tasks;
using ChainLora.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.Tests;

/// <summary>
/// `--device cuda` needs every module and every tensor the library creates to land on the model's
/// device. Without a GPU, these tests make a forgotten device visible: torch's default device is
/// set to meta while the model lives on the CPU, so a factory call without <c>device:</c> makes a
/// meta tensor, which fails the first op it shares with a CPU tensor, or the first read of its
/// values. Training (LoRA dropout, gradient checkpointing, clipping, a knot and a chain extension,
/// a checkpoint and a resume), evaluation scoring, generation, perplexity and export all run, with
/// both attention kernels. The opposite mistake, a tensor kept on the CPU on purpose (tied links,
/// adapters read from disk) meeting the weights unmoved, shows with the model itself on meta.
/// </summary>
public class DevicePlacementTests
{
    static readonly Device Meta = new(DeviceType.META);

    /// <summary>Runs <paramref name="body"/> with torch's default device set to meta, restoring it after.</summary>
    static void WithDefaultDeviceMeta(Action body)
    {
        var before = get_default_device();
        set_default_device(Meta);
        try { body(); }
        finally { set_default_device(before); }
    }

    static CausalLM Build(string architecture, AttentionKernel kernel)
    {
        CausalLM model = architecture == "llama"
            ? new LlamaForCausalLM(TinyModels.LlamaConfig, ScalarType.BFloat16, CPU)
            : new OptForCausalLM(TinyModels.OptConfig, device: CPU);
        model.AttentionKernel = kernel;
        return model;
    }

    /// <summary>Random LM batches made on <paramref name="device"/>, as the task data makes them.</summary>
    sealed class LmData(int batches, Device device) : ITrainingData
    {
        public int BatchesPerEpoch => batches;

        public IEnumerable<TrainingBatch> Epoch(int epoch)
        {
            for (var i = 0; i < batches; i++)
            {
                var ids = TinyModels.Tokens(100 * epoch + i).to(device);
                var targets = cat([ids[.., 1..], full(2, 1, -100L, dtype: ScalarType.Int64, device: device)], 1);
                yield return new LmBatch(ids, targets, ones(2, 12, dtype: ScalarType.Int64, device: device));
            }
        }
    }

    /// <summary>Classification batches whose candidates share prompts (the cached-prompt path).</summary>
    sealed class ChoiceData(Device device) : ITrainingData
    {
        public int BatchesPerEpoch => 2;

        public IEnumerable<TrainingBatch> Epoch(int epoch)
        {
            for (var i = 0; i < BatchesPerEpoch; i++)
            {
                var prompt = Enumerable.Range(3 + i, 6).ToList();
                var candidates = new List<PromptAndContinuation> { new(prompt, [40]), new(prompt, [41, 42]) };
                yield return ChoiceBatch.Create([new EncodedChoice(candidates, [i % 2]), new EncodedChoice(candidates, [1 - i % 2])], device);
            }
        }
    }

    [Theory]
    [InlineData("llama", AttentionKernel.Auto)]
    [InlineData("llama", AttentionKernel.Math)]
    [InlineData("opt", AttentionKernel.Auto)]
    [InlineData("opt", AttentionKernel.Math)]
    public void Training_knots_checkpoints_evaluation_and_export_create_nothing_off_the_models_device(string architecture, AttentionKernel kernel)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"chainlora-device-{architecture}-{Guid.NewGuid():N}");
        try
        {
            WithDefaultDeviceMeta(() =>
            {
                using var model = Build(architecture, kernel);
                var device = model.Device;
                Assert.Equal(DeviceType.CPU, device.type);
                Assert.All(model.parameters(), p => Assert.Equal(DeviceType.CPU, p.device.type));

                // A chain of two links: forward, backward, clipping, AdamW, a knot, a chain extension,
                // checkpoints at the link end, then a resume from that checkpoint.
                var options = new TrainerOptions
                {
                    Method = TrainingMethod.Cola, LearningRate = 1e-3, Epochs = 2, Seed = 3, MaxGradNorm = 1.0,
                    GradientCheckpointing = true,
                };
                var plumbing = new RunPlumbing { CheckpointDir = Path.Combine(dir, "checkpoint") };
                var lora = new LoraConfig { Dropout = 0.1, Bias = architecture == "opt" ? LoraBias.LoraOnly : LoraBias.None };
                var trainer = new ChainTrainer(model, options, lora, new ChainConfig { Length = 2 }, plumbing);
                var result = trainer.Train(new LmData(2, device));
                Assert.Equal(4, result.StepLosses.Count);
                Assert.All(result.StepLosses, l => Assert.True(double.IsFinite(l)));
                Assert.All(trainer.Adapters!.Layers.Values, l => Assert.Single(l.TiedLinks));
                trainer.Train(new LmData(2, device), resumeFrom: plumbing.CheckpointDir);

                AssertOnDevice(model, device);

                // Classification batches: shared prompts through the KV cache, and as whole rows under checkpointing.
                foreach (var checkpointing in new[] { false, true })
                {
                    using var classifier = Build(architecture, kernel);
                    new ChainTrainer(classifier, new TrainerOptions { LearningRate = 1e-3, Seed = 4, GradientCheckpointing = checkpointing },
                        new LoraConfig(), new ChainConfig()).Train(new ChoiceData(device));
                    AssertOnDevice(classifier, device);
                }
                // Full fine-tuning (fp32 weights).
                using (var full = new OptForCausalLM(TinyModels.OptConfig, device: CPU) { AttentionKernel = kernel })
                {
                    new ChainTrainer(full, new TrainerOptions { Method = TrainingMethod.Full, LearningRate = 1e-3, Seed = 4, MaxGradNorm = 1.0 },
                        new LoraConfig(), new ChainConfig()).Train(new LmData(1, device));
                    AssertOnDevice(full, device);
                }

                // Evaluation: candidate scoring (whole rows and shared prompts), perplexity, generation.
                var prompt = new[] { 1, 5, 9, 13 };
                List<PromptAndContinuation> rows = [new(prompt, [20, 21]), new(prompt, [22]), new([1, 7], [30, 31, 32])];
                Assert.Equal(kernel, model.AttentionKernel);
                Assert.All(ContinuationScoring.Score(model, rows), s => Assert.True(double.IsFinite(s)));
                Assert.All(ContinuationScoring.ScoreSharingPrompts(model, rows), s => Assert.True(double.IsFinite(s)));
                Assert.True(double.IsFinite(Perplexity.OfWindows(model, [[1, 4, 8, 2, 9], [1, 3]]).NllPerToken));
                Generation.Generate(model, [prompt, [1, 2]], new GenerationOptions(MaxNewTokens: 3));
                Generation.Generate(model, [prompt], new GenerationOptions(MaxNewTokens: 3, Temperature: 0.8, Seed: 1));

                // Export: the chain as a PEFT adapter (saved, loaded, merged into and attached to a
                // fresh model) and the merged weights as a Hugging Face folder.
                using var adapter = PeftAdapter.FromChain(trainer.Adapters!);
                adapter.Save(Path.Combine(dir, "peft"));
                using var loaded = PeftAdapter.Load(Path.Combine(dir, "peft"));
                using (var fresh = Build(architecture, kernel)) loaded.MergeInto(fresh);
                using (var fresh = Build(architecture, kernel)) AssertOnDevice(loaded.AttachTo(fresh).Model, device);
                MergedExport.Save(model, Path.Combine(dir, "merged"), null);
            });
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// A model on meta (no values, so nothing here may read them): injecting LoRA, extending the
    /// chain, and merging or attaching an adapter whose factors live on the CPU must move those
    /// factors to the weights' device, or libtorch refuses the mix.
    /// </summary>
    [Fact]
    public void Cpu_side_adapters_reach_a_model_on_another_device()
    {
        using var model = new LlamaForCausalLM(TinyModels.LlamaConfig, ScalarType.BFloat16, Meta);
        var adapters = LoraAdapters.Inject(model, new LoraConfig());
        adapters.ExtendChain(4, 8);
        AssertOnDevice(model, Meta);

        var factors = new Dictionary<string, LoraFactors>();
        foreach (var (name, layer) in adapters.Layers)
            factors[name] = new LoraFactors(randn(2, layer.Base.InFeatures, device: CPU), randn(layer.Base.OutFeatures, 2, device: CPU), 0.5);
        using var adapter = PeftAdapter.FromLinks(model, [factors], new Dictionary<string, Tensor>());
        using (var fresh = new LlamaForCausalLM(TinyModels.LlamaConfig, ScalarType.BFloat16, Meta))
        {
            adapter.MergeInto(fresh);
            AssertOnDevice(fresh, Meta);
        }
        using (var fresh = new LlamaForCausalLM(TinyModels.LlamaConfig, ScalarType.BFloat16, Meta))
            AssertOnDevice(adapter.AttachTo(fresh).Model, Meta);
    }

    /// <summary>Every parameter and gradient of <paramref name="model"/> is on <paramref name="device"/>.</summary>
    static void AssertOnDevice(nn.Module model, Device device)
    {
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.True(p.device.type == device.type, $"{name} is on {p.device}, the model on {device}");
            if (p.grad is { } g) Assert.True(g.device.type == device.type, $"the gradient of {name} is on {g.device}");
        }
    }

    /// <summary>The mechanism the test above relies on: an undeviced tensor meeting the model fails loudly.</summary>
    [Fact]
    public void A_tensor_created_without_a_device_fails_against_the_model()
    {
        WithDefaultDeviceMeta(() =>
        {
            using var model = Build("llama", AttentionKernel.Auto);
            var ids = TinyModels.Tokens(1).to(model.Device);
            var hidden = model.ForwardHidden(ids);
            Assert.ThrowsAny<Exception>(() => hidden + ones(hidden.shape));
            Assert.ThrowsAny<Exception>(() => model.ForwardHidden(randint(3, 64, [1, 4], dtype: ScalarType.Int64)));   // tokens made without a device
            using var unplaced = new LlamaForCausalLM(TinyModels.LlamaConfig);               // a model built without a device
            Assert.Equal(DeviceType.META, unplaced.Device.type);
        });
    }
}
