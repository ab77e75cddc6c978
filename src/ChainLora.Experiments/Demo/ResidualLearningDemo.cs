// `chainlora demo`: a synthetic residual-learning benchmark on a real transformer. A random
// "pretrained" Llama is the student; the target is the same model plus a known update dW* of
// rank well above r on q_proj and v_proj. Every method gets the same step budget and learning
// rate and learns to match the target's logits (MSE) on random token sequences. Because dW* is
// known, we can measure how much of it each method recovers: a single rank-r LoRA can capture at
// most a rank-r part, a chain of M links up to rank M r (paper, Sec. 3.2 and the Frank-Wolfe view).
using System.Diagnostics;
using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Demo;

public sealed record DemoOptions
{
    public int Steps { get; init; } = 480;
    public int BatchSize { get; init; } = 16;
    public int SequenceLength { get; init; } = 32;
    public int TrainSequences { get; init; } = 512;
    public int HeldoutSequences { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-2;
    public int Rank { get; init; } = 8;
    public int TargetRank { get; init; } = 24;
    /// <summary>||dW*|| relative to ||W|| for every adapted matrix.</summary>
    public double TargetScale { get; init; } = 0.5;
    public long Seed { get; init; }

    public static LlamaConfig ModelConfig => new()
    {
        VocabSize = 256, HiddenSize = 96, IntermediateSize = 256, NumHiddenLayers = 4, NumAttentionHeads = 6,
        NumKeyValueHeads = 6, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5,
    };

    /// <summary>The settings checked; the error names the value.</summary>
    public DemoOptions Validate()
    {
        // Three links over the budget with at least two steps each.
        if (Steps < 6) throw new ArgumentException($"demo steps {Steps}: must be at least 6");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"demo learning rate {LearningRate}: must be a positive number");
        return this;
    }
}

/// <summary>One method of the comparison: LoRA is a chain of length 1; a variant other than paper changes how the chain is run.</summary>
public sealed record DemoMethod(string Name, int ChainLength, IReadOnlyList<int> Ranks, ColaVariant Variant = ColaVariant.Paper);

/// <summary>
/// <paramref name="BestSingleLinkError"/>: the smallest relative error any one update of the
/// run's largest link rank can reach (Eckart-Young, from dW*'s singular values), the ceiling a
/// single LoRA of that rank cannot pass and a chain can.
/// </summary>
public sealed record DemoRun(string Method, int ChainLength, IReadOnlyList<int> Ranks, long TrainableParameters,
    double FinalTrainLoss, double HeldoutLoss, double RelativeUpdateError, double BestSingleLinkError, double TrainingFlops, double Seconds);

public static class ResidualLearningDemo
{
    /// <summary>LoRA r, COLA 2 and 3 at r, COLA (r, r/2) step-down, and LoRA at the target's rank as the reference.</summary>
    public static IReadOnlyList<DemoMethod> DefaultMethods(DemoOptions o) =>
    [
        new($"LoRA r={o.Rank}", 1, [o.Rank]),
        new("COLA M=2", 2, [o.Rank]),
        new("COLA M=3", 3, [o.Rank]),
        new($"COLA ({o.Rank},{o.Rank / 2})", 2, [o.Rank, o.Rank / 2]),
        new($"LoRA r={o.TargetRank}", 1, [o.TargetRank]),
    ];

    /// <summary>The chain variants at chain length 3 (auto knots: at most 3), to set beside <see cref="DefaultMethods"/>.</summary>
    public static IReadOnlyList<DemoMethod> VariantMethods(DemoOptions o) =>
    [
        new("COLA M<=3 auto knots", 3, [o.Rank], ColaVariant.AutoKnots),
        new("COLA M=3 rewarm", 3, [o.Rank], ColaVariant.Rewarm),
        new("COLA M=3 gradient init", 3, [o.Rank], ColaVariant.GradientInit),
    ];

    /// <summary>Runs every method on the same target and data; <paramref name="onStep"/> reports progress.</summary>
    public static List<DemoRun> Run(DemoOptions o, IReadOnlyList<DemoMethod> methods, Action<DemoMethod, StepReport>? onStep = null)
    {
        o.Validate();
        Runtime.NativeRuntime.Ensure();
        var config = DemoOptions.ModelConfig;
        // A CPU demo: every model and tensor says so, whatever torch's default device is.
        manual_seed(o.Seed);
        using var pretrained = new LlamaForCausalLM(config, device: CPU);
        var weights = pretrained.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var targetDelta = TargetDelta(pretrained, o);
        var singularValues = targetDelta.Values.Select(d => linalg.svdvals(d).data<float>().Select(x => (double)x).ToArray()).ToList();
        using var target = new LlamaForCausalLM(config, device: CPU);
        StateDict.LoadStrict(target, weights, "pretrained");
        using (no_grad())
            foreach (var (name, p) in target.named_parameters())
                if (targetDelta.TryGetValue(name, out var d)) p.add_(d);

        using var g = new Generator((ulong)o.Seed + 1);
        var trainIds = randint(0, config.VocabSize, [o.TrainSequences, o.SequenceLength], generator: g, dtype: ScalarType.Int64, device: CPU);
        var heldoutIds = randint(0, config.VocabSize, [o.HeldoutSequences, o.SequenceLength], generator: g, dtype: ScalarType.Int64, device: CPU);
        Tensor trainLogits, heldoutLogits;
        using (no_grad())
        {
            trainLogits = target.Forward(trainIds);
            heldoutLogits = target.Forward(heldoutIds);
        }

        var runs = new List<DemoRun>();
        foreach (var method in methods)
        {
            var clock = Stopwatch.StartNew();
            using var student = new LlamaForCausalLM(config, device: CPU);
            StateDict.LoadStrict(student, weights, "pretrained");
            // Six epochs split evenly into 1, 2 or 3 links; the budget in steps is the same for all.
            const int epochs = 6;
            var data = new DistillationData(trainIds, trainLogits, o.BatchSize, o.Steps / epochs, o.Seed);
            var trainer = new ChainTrainer(student,
                new TrainerOptions
                {
                    Method = method.ChainLength == 1 ? TrainingMethod.Lora : TrainingMethod.Cola,
                    LearningRate = o.LearningRate, Epochs = epochs, Seed = o.Seed, Variant = method.Variant,
                },
                new LoraConfig { Rank = method.Ranks[0], Alpha = 2.0 * method.Ranks[0] },
                new ChainConfig { Length = method.ChainLength, Ranks = method.Ranks })
            {
                OnStep = r => onStep?.Invoke(method, r),
            };
            var result = trainer.Train(data);
            var heldout = Mse(student, heldoutIds, heldoutLogits, o.BatchSize);
            var error = RelativeError(targetDelta, trainer.Adapters!.TotalDeltas());
            var final = result.StepLosses.TakeLast(Math.Max(1, o.Steps / epochs)).Average();
            runs.Add(new DemoRun(method.Name, result.Links.Count, result.Links.Select(l => l.Rank).ToList(),
                result.TrainableParameters, final, heldout, error, BestRankError(singularValues, method.Ranks.Max()), result.TotalFlops,
                clock.Elapsed.TotalSeconds));
        }
        return runs;
    }

    /// <summary>dW* = U V with U (out, R), V (R, in) Gaussian, scaled to TargetScale ||W||.</summary>
    static Dictionary<string, Tensor> TargetDelta(CausalLM model, DemoOptions o)
    {
        var deltas = new Dictionary<string, Tensor>();
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!name.EndsWith("q_proj.weight", StringComparison.Ordinal) && !name.EndsWith("v_proj.weight", StringComparison.Ordinal)) continue;
            var d = randn(p.shape[0], o.TargetRank, device: CPU).matmul(randn(o.TargetRank, p.shape[1], device: CPU));
            deltas[name] = d * (o.TargetScale * p.norm().item<float>() / d.norm().item<float>());
        }
        return deltas;
    }

    /// <summary>sqrt(sum over matrices of sum_{i > r} s_i^2 / sum of all s_i^2).</summary>
    static double BestRankError(List<double[]> singularValues, int rank) =>
        Math.Sqrt(singularValues.Sum(s => s.Skip(rank).Sum(x => x * x)) / singularValues.Sum(s => s.Sum(x => x * x)));

    static double RelativeError(Dictionary<string, Tensor> target, Dictionary<string, Tensor> learned)
    {
        double residual = 0, total = 0;
        foreach (var (name, d) in target)
        {
            var layer = name[..^".weight".Length];
            residual += Math.Pow((d - learned[layer]).norm().item<float>(), 2);
            total += Math.Pow(d.norm().item<float>(), 2);
        }
        return Math.Sqrt(residual / total);
    }

    static double Mse(CausalLM model, Tensor ids, Tensor targets, int batchSize)
    {
        using var _ = no_grad();
        double sum = 0;
        for (long i = 0; i < ids.shape[0]; i += batchSize)
        {
            using var scope = NewDisposeScope();
            var n = Math.Min(batchSize, ids.shape[0] - i);
            sum += nn.functional.mse_loss(model.Forward(ids.narrow(0, i, n)), targets.narrow(0, i, n)).item<float>() * n;
        }
        return sum / ids.shape[0];
    }

    /// <summary>Random minibatches of (ids, target logits), reshuffled every epoch.</summary>
    sealed class DistillationData(Tensor ids, Tensor logits, int batchSize, int batchesPerEpoch, long seed) : ITrainingData
    {
        public int BatchesPerEpoch => batchesPerEpoch;

        public IEnumerable<TrainingBatch> Epoch(int epoch)
        {
            var order = Enumerable.Range(0, (int)ids.shape[0]).ToArray();
            new Random((int)seed * 7919 + epoch).Shuffle(order);
            for (var b = 0; b < batchesPerEpoch; b++)
            {
                var pick = tensor(order.Skip(b * batchSize % order.Length).Take(batchSize).Select(i => (long)i).ToArray(), device: CPU);
                yield return new DistillationBatch(ids.index_select(0, pick), logits.index_select(0, pick));
            }
        }
    }

    sealed class DistillationBatch(Tensor ids, Tensor targetLogits) : TrainingBatch
    {
        public override long Tokens => ids.numel();
        public override int SequenceLength => (int)ids.shape[1];
        public override Tensor Loss(CausalLM model) => nn.functional.mse_loss(model.Forward(ids), targetLogits);
    }
}
