// `chainlora bench`: the speed of one LoRA / COLA / full fine-tuning step on random-weight
// models of named shapes, with the machine's matmul peak measured in the same run.
using System.Diagnostics;
using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Benchmarking;

public static class BenchShapes
{
    public static readonly IReadOnlyList<string> Names = ["tiny260k", "llama15m", "llama110m", "opt125m", "opt-1.3b", "llama-2-7b"];

    /// <summary>A config record (LlamaConfig or OptConfig) for a named shape.</summary>
    public static object Config(string name) => name switch
    {
        // stories260K's shape
        "tiny260k" => new LlamaConfig
        {
            VocabSize = 512, HiddenSize = 64, IntermediateSize = 172, NumHiddenLayers = 5, NumAttentionHeads = 8,
            NumKeyValueHeads = 4, MaxPositionEmbeddings = 512, RmsNormEps = 1e-5, TieWordEmbeddings = true,
        },
        // llama2.c's stories15M
        "llama15m" => new LlamaConfig
        {
            VocabSize = 32000, HiddenSize = 288, IntermediateSize = 768, NumHiddenLayers = 6, NumAttentionHeads = 6,
            NumKeyValueHeads = 6, MaxPositionEmbeddings = 1024, RmsNormEps = 1e-5, TieWordEmbeddings = true,
        },
        // llama2.c's stories110M
        "llama110m" => new LlamaConfig
        {
            VocabSize = 32000, HiddenSize = 768, IntermediateSize = 2048, NumHiddenLayers = 12, NumAttentionHeads = 12,
            NumKeyValueHeads = 12, MaxPositionEmbeddings = 1024, RmsNormEps = 1e-5, TieWordEmbeddings = true,
        },
        "opt125m" => OptConfig.Opt125m,
        // the paper's two models
        "opt-1.3b" => OptConfig.Opt1_3b,
        "llama-2-7b" => LlamaConfig.Llama2_7B,
        _ => throw new ArgumentException($"bench shape '{name}': expected one of {string.Join(", ", Names)}"),
    };
}

public sealed record BenchOptions
{
    public string Shape { get; init; } = "tiny260k";
    /// <summary>A model folder to load (in <see cref="BaseDtype"/>) instead of a random model of <see cref="Shape"/>.</summary>
    public string? ModelDir { get; init; }
    public TrainingMethod Method { get; init; } = TrainingMethod.Lora;
    public ScalarType BaseDtype { get; init; } = ScalarType.Float32;
    public int Batch { get; init; } = 8;
    public int Sequence { get; init; } = 256;
    public int Steps { get; init; } = 10;
    public int Warmup { get; init; } = 2;
    public long Seed { get; init; }
    /// <summary>Recompute each decoder layer in backward; the FLOP count (and so MFU) stays the model's.</summary>
    public bool GradientCheckpointing { get; init; }
    public AttentionKernel Attention { get; init; } = AttentionKernel.Auto;
    /// <summary>The activations' dtype (<see cref="CausalLM.ActivationDtype"/>); auto chooses by device.</summary>
    public ActivationPrecision Activations { get; init; }
    /// <summary>Where the model, the batches and the matmul peak run; null is the CPU.</summary>
    public Device? Device { get; init; }
}

public sealed record BenchResult(string Shape, string Method, string BaseDtype, int Batch, int Sequence, int Steps,
    double MedianStepSeconds, double TokensPerSecond, double AchievedGflops, double PeakGflops, double Mfu,
    double PeakRssMb, double KnotSeconds, int Threads, bool GradientCheckpointing, BenchLoad? Load = null,
    string Activations = "fp32", double DevicePeakMb = double.NaN, string? LibTorch = null)
{
    /// <summary>
    /// A knot's share of a link's wall time in the paper's setting: 1000 examples, 5 epochs,
    /// chain length 3, at this step time (one example per sequence of the batch).
    /// </summary>
    public double KnotFractionOfRealisticLink => KnotSeconds / (MedianStepSeconds * Math.Ceiling(1000.0 / Batch) * 5 / 3);
}

/// <summary>
/// Loading a model folder: seconds, the process's resident set before and its high-water mark
/// right after, and the bytes of the loaded parameters.
/// </summary>
public sealed record BenchLoad(double Seconds, double RssBeforeMb, double PeakRssMb, double WeightsMb)
{
    /// <summary>Peak resident set while loading over the final weights (the process's own baseline included).</summary>
    public double PeakOverWeights => PeakRssMb / WeightsMb;
}

public static class StepBenchmark
{
    public static BenchResult Run(BenchOptions o)
    {
        Runtime.NativeRuntime.Ensure();
        if (o.Steps < 1 || o.Warmup < 0 || o.Batch < 1 || o.Sequence < 2)
            throw new ArgumentException($"bench: steps {o.Steps}, warmup {o.Warmup}, batch {o.Batch}, seq {o.Sequence} must be positive");
        var device = o.Device ?? CPU;
        // Loading first: the resident-set high-water mark right after it is the load's own.
        var (model, load) = o.ModelDir is null ? (RandomModel(o, device), null) : LoadModel(o.ModelDir, o.BaseDtype, device);
        using var _ = model;
        model.AttentionKernel = o.Attention;
        var peak = MatmulPeakGflops(o.BaseDtype, device);
        if (o.Sequence > model.MaxPositions)
            throw new ArgumentException($"--seq {o.Sequence} exceeds the {o.ModelDir ?? o.Shape} context of {model.MaxPositions}");

        var total = o.Warmup + o.Steps;
        if (device.type == TorchSharp.DeviceType.CPU)
        {
            var positions = (long)o.Batch * o.Sequence;
            Runtime.MemoryBudget.Require(positions * 2 * sizeof(long) + ParameterCount.ActivationBytesLowerBound(positions, model),
                $"--batch {o.Batch} --seq {o.Sequence} ({positions} tokens: their ids and the activations backward keeps, at least)");
        }
        // COLA: two links with the knot in the middle of the timed steps (the memory claim is about
        // training across knots); LoRA and full: one link.
        var chain = o.Method == TrainingMethod.Cola
            ? new ChainConfig { Length = 2, KnotSteps = [o.Warmup + Math.Max(1, o.Steps / 2)] }
            : new ChainConfig();
        var stamps = new List<TimeSpan>();
        var options = new TrainerOptions
        {
            Method = o.Method, LearningRate = 1e-4, Seed = o.Seed, GradientCheckpointing = o.GradientCheckpointing, Activations = o.Activations,
        };
        var trainer = new ChainTrainer(model, options, new LoraConfig(), chain) { OnStep = r => stamps.Add(r.Elapsed) };
        // The device's memory in use, polled as nvidia-smi would be, from the model's weights to the last step.
        using var deviceMemory = device.type == TorchSharp.DeviceType.CUDA ? new Runtime.DeviceMemory.PeakPoller(device.index, TimeSpan.FromMilliseconds(20)) : null;
        var result = trainer.Train(new RandomTokens(model.VocabSize, o.Batch, o.Sequence, total, o.Seed, device));
        if (device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(device);

        var durations = stamps.Zip(stamps.Skip(1), (a, b) => (b - a).TotalSeconds).Skip(Math.Max(0, o.Warmup - 1)).ToList();
        if (o.Method == TrainingMethod.Cola) durations.Remove(durations.Max()); // the step that includes the knot
        var median = Median(durations.Count > 0 ? durations : [stamps[0].TotalSeconds]);
        var tokens = (double)o.Batch * o.Sequence;
        // The model's FLOPs only: under gradient checkpointing the recomputed forwards are overhead, not work.
        var gflops = Flops.PerToken(model, o.Sequence).Training * tokens / median / 1e9;
        return new BenchResult(o.ModelDir ?? o.Shape, o.Method.ToString().ToLowerInvariant(), Models.StorageDtype.Name(o.BaseDtype),
            o.Batch, o.Sequence, o.Steps, median, tokens / median, gflops, peak, gflops / peak, Runtime.ProcessMemory.PeakRssMb(),
            result.KnotTime.TotalSeconds, get_num_threads(), o.GradientCheckpointing, load, Models.StorageDtype.Name(model.ActivationDtype),
            deviceMemory?.PeakMb ?? double.NaN, Runtime.NativeRuntime.LibTorchFolder);
    }

    static CausalLM RandomModel(BenchOptions o, Device device)
    {
        var model = Loading.PretrainedModel.Create(BenchShapes.Config(o.Shape), o.BaseDtype, device, initialize: false);
        FillRandomLikeTransformers(model, o.Seed);
        return model;
    }

    static (CausalLM, BenchLoad) LoadModel(string dir, ScalarType dtype, Device device)
    {
        var before = Runtime.ProcessMemory.CurrentRssMb();
        Runtime.ProcessMemory.ResetPeak();
        var clock = Stopwatch.StartNew();
        var loaded = Loading.PretrainedModel.Load(dir, dtype, device);
        var seconds = clock.Elapsed.TotalSeconds;
        var peak = Runtime.ProcessMemory.PeakRssMb();
        var bytes = loaded.Model.parameters().Sum(p => p.numel() * p.element_size());
        return (loaded.Model, new BenchLoad(seconds, before, peak, bytes / 1048576.0));
    }

    /// <summary>
    /// Matrices and embeddings drawn from N(0, 0.02) as transformers' <c>_init_weights</c> (and the
    /// PyTorch peer) does, biases zero, norms one. Drawing 7B Gaussians takes minutes on 2 cores,
    /// and a step's speed does not depend on which values it multiplies, so one block of 2^20
    /// draws is repeated through every tensor. The scale matters: torch.nn.Embedding's own N(0, 1),
    /// through the tied head, gives logits with a standard deviation of ~17 whose softmax
    /// underflows, and libtorch's vectorised exp takes a slow path for results below the fp32
    /// range (15x slower at exp(-100) than at exp(-5)) that no trained checkpoint meets.
    /// </summary>
    static void FillRandomLikeTransformers(CausalLM model, long seed)
    {
        using var _ = no_grad();
        manual_seed(seed);
        using var block = normal(0, 0.02, [1 << 20]);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else if (p.dim() == 1) p.fill_(1);
            else
            {
                using var flat = p.view(-1);
                for (long at = 0; at < flat.numel(); at += block.numel())
                {
                    var n = Math.Min(block.numel(), flat.numel() - at);
                    using var part = flat.narrow(0, at, n);
                    using var source = block.narrow(0, 0, n);
                    part.copy_(source);
                }
            }
        }
    }

    /// <summary>
    /// Best-of-several GFLOP/s of square matmuls in <paramref name="dtype"/> on <paramref name="device"/>
    /// (the CPU when null), after a warm-up: the first fp32 calls on a CPU run at half speed while the
    /// BLAS thread pool spins up, and a GPU's clocks rise under load. The squares are sized for the
    /// device: n = 1024 and 2048 on a CPU; n = 8192 on a GPU, where 1024-squares reach half the
    /// peak (380-470 against 801-811 TFLOP/s on an H200), which would double every MFU. CUDA kernels
    /// run asynchronously, so each timing covers several products and waits for them.
    /// </summary>
    public static double MatmulPeakGflops(ScalarType dtype, Device? device = null, int repeats = 10)
    {
        device ??= CPU;
        var gpu = device.type == TorchSharp.DeviceType.CUDA;
        void Wait() { if (gpu) cuda.synchronize(device); }
        using var _ = no_grad();
        var best = 0.0;
        var (sizes, perTiming, warmupSeconds) = gpu ? (new[] { 8192 }, 10, 2.0) : (new[] { 1024, 2048 }, 1, 0.5);
        var warmup = Stopwatch.StartNew();
        foreach (var n in sizes)
        {
            using var scope = NewDisposeScope();
            var a = randn(n, n, device: device).to(dtype);
            var b = randn(n, n, device: device).to(dtype);
            while (warmup.Elapsed.TotalSeconds < warmupSeconds) { a.matmul(b).Dispose(); Wait(); }
            for (var i = 0; i < repeats; i++)
            {
                var clock = Stopwatch.StartNew();
                for (var j = 0; j < perTiming; j++) a.matmul(b).Dispose();
                Wait();
                best = Math.Max(best, 2.0 * n * n * n * perTiming / clock.Elapsed.TotalSeconds / 1e9);
            }
        }
        return best;
    }

    static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>Uniform random tokens, drawn on the CPU (the same on every device) and moved to <paramref name="device"/>; next-token targets at every position.</summary>
    sealed class RandomTokens(int vocab, int batch, int sequence, int batches, long seed, Device device) : ITrainingData
    {
        public int BatchesPerEpoch => batches;

        public IEnumerable<TrainingBatch> Epoch(int epoch)
        {
            using var g = new Generator((ulong)seed + 17);
            for (var i = 0; i < batches; i++)
            {
                var ids = randint(0, vocab, [batch, sequence + 1], generator: g, dtype: ScalarType.Int64, device: CPU).to(device);
                yield return new LmBatch(ids.narrow(1, 0, sequence), ids.narrow(1, 1, sequence));
            }
        }
    }
}
