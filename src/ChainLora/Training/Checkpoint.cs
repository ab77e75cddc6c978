// Checkpoints that allow exact continuation: everything the next step depends on.
//   state.json          schedule position (step, epoch, batches consumed), losses, tokens, FLOPs, time
//   weights.safetensors the weights that change: adapted frozen matrices (knots merge into them),
//                       trained biases, current LoRA A/B, tied links; for full fine-tuning all weights
//   optimizer.bin       optimizer state (moments, step counts)
//   rng.bin             torch's CPU generator state (dropout, LoRA init at the next knot)
// Written into a temporary folder and swapped in by rename, so an interruption leaves the previous
// checkpoint intact.
using System.Text.Json;
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;
using Optimizer = TorchSharp.torch.optim.Optimizer;

namespace ChainLora.Training;

/// <summary>Where a run stands; serialised into a checkpoint's state.json.</summary>
public sealed class RunState
{
    public int Step { get; set; }
    public int Epoch { get; set; }
    /// <summary>Micro-batches of <see cref="Epoch"/> already consumed.</summary>
    public int BatchInEpoch { get; set; }
    public long Tokens { get; set; }
    public double ElapsedSeconds { get; set; }
    public double KnotSeconds { get; set; }
    public List<double> StepLosses { get; set; } = [];
    public double[] LinkFlops { get; set; } = [];
    public List<LinkFactors> TiedScalings { get; set; } = [];
    /// <summary>Knots placed during training (automatic knots), in order.</summary>
    public List<AutoKnot> AutoKnots { get; set; } = [];
    /// <summary>Per finished link: the mean over adapted layers of the accumulated delta W's effective rank (<see cref="DeltaSpectrum"/>).</summary>
    public List<double> DeltaEffectiveRanks { get; set; } = [];
    /// <summary>What defines the run (<see cref="RunPlumbing.Fingerprint"/>); a resume must match it.</summary>
    public Dictionary<string, string> Fingerprint { get; set; } = [];
}

/// <summary>Where an automatic knot was tied and why.</summary>
public sealed record AutoKnot(int Step, string Reason);

/// <summary>Rank, alpha and the scalings of tied links, per adapted layer (the tensors live in weights.safetensors).</summary>
public sealed record LinkFactors(string Layer, int Rank, double Alpha, List<double> TiedScalings);

public static class Checkpoint
{
    const string StateFile = "state.json", WeightsFile = "weights.safetensors", OptimizerFile = "optimizer.bin", RngFile = "rng.bin";
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The folder a run keeps its checkpoint in, inside its output folder.</summary>
    public const string FolderName = "checkpoint";

    /// <summary><paramref name="path"/> when it is a checkpoint, or the checkpoint inside a run folder; an error naming both otherwise.</summary>
    public static string Locate(string path)
    {
        AtomicFolder.Recover(Path.Combine(path, FolderName));
        AtomicFolder.Recover(path);
        if (File.Exists(Path.Combine(path, StateFile))) return path;
        var inside = Path.Combine(path, FolderName);
        if (File.Exists(Path.Combine(inside, StateFile))) return inside;
        throw new FileNotFoundException(
            $"--resume '{path}': no checkpoint there (expected {Path.Combine(path, StateFile)} or {Path.Combine(inside, StateFile)})");
    }

    public static void Save(string dir, RunState run, CausalLM model, LoraAdapters? adapters, Optimizer optimizer)
    {
        var tensors = new Dictionary<string, Tensor>();
        run.TiedScalings = [];
        if (adapters is null)
        {
            foreach (var (name, p) in model.named_parameters()) tensors[name] = p.detach();
        }
        else
        {
            foreach (var (name, p) in model.named_parameters())
                if (p.requires_grad && !name.Contains(".lora.", StringComparison.Ordinal)) tensors[name] = p.detach();
            foreach (var (name, layer) in adapters.Layers)
            {
                tensors[$"{name}.weight"] = layer.Base.Weight.detach();
                tensors[$"{name}.lora_A"] = layer.A.detach();
                tensors[$"{name}.lora_B"] = layer.B.detach();
                for (var i = 0; i < layer.TiedLinks.Count; i++)
                {
                    tensors[$"{name}.tied{i}.A"] = layer.TiedLinks[i].A;
                    tensors[$"{name}.tied{i}.B"] = layer.TiedLinks[i].B;
                }
                run.TiedScalings.Add(new LinkFactors(name, layer.Rank, layer.Alpha, layer.TiedLinks.Select(t => t.Scaling).ToList()));
            }
        }
        AtomicFolder.Replace(dir, temp =>
        {
            SafeTensors.Save(Path.Combine(temp, WeightsFile), tensors);
            Helper(optimizer).save_state_dict(Path.Combine(temp, OptimizerFile));
            using (var rng = get_rng_state()) File.WriteAllBytes(Path.Combine(temp, RngFile), rng.data<byte>().ToArray());
            File.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(run, Json));
        });
    }

    /// <summary>Puts weights, LoRA and RNG back; returns the run state. The optimizer comes after.</summary>
    public static RunState Restore(string dir, CausalLM model, LoraAdapters? adapters, ChainSchedule schedule, IReadOnlyDictionary<string, string>? fingerprint)
    {
        var statePath = Path.Combine(dir, StateFile);
        if (!File.Exists(statePath)) throw new FileNotFoundException($"not a checkpoint: {statePath} is missing", statePath);
        var run = JsonFile.Read<RunState>(statePath, what: "checkpoint state");
        CheckRanges(statePath, run, schedule, adapters is not null);
        if (run.Step > schedule.TotalSteps || run.LinkFlops.Length != schedule.MaxLinks)
            throw new InvalidDataException(
                $"{dir}: checkpoint at step {run.Step} with {run.LinkFlops.Length} links does not fit this run ({schedule.TotalSteps} steps, {schedule.MaxLinks} links); same options as the interrupted run?");
        CheckFingerprint(dir, run.Fingerprint, fingerprint);

        var rngPath = Path.Combine(dir, RngFile);
        var rng = File.Exists(rngPath) ? File.ReadAllBytes(rngPath) : throw new FileNotFoundException($"{rngPath}: missing", rngPath);
        using (var current = get_rng_state())
            if (rng.Length != current.numel())
                throw new InvalidDataException($"{rngPath}: {rng.Length} bytes, a CPU generator state has {current.numel()}; the checkpoint is damaged");
        if (GeneratorState.Problem(rng) is { } problem)
            throw new InvalidDataException($"{rngPath}: not a CPU generator state: {problem}; the checkpoint is damaged");

        var tensors = SafeTensors.Load(Path.Combine(dir, WeightsFile));
        try
        {
            RestoreTensors(dir, tensors, run, model, adapters);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        using (var state = tensor(rng, ScalarType.Byte, CPU)) set_rng_state(state);
        return run;
    }

    /// <summary>state.json inside a run folder's checkpoint: present when the run can be resumed.</summary>
    public static string StatePath(string runDir) => Path.Combine(runDir, FolderName, StateFile);

    /// <summary>The stored tensors into the model and its LoRA layers (copied: the caller disposes <paramref name="tensors"/>).</summary>
    static void RestoreTensors(string dir, Dictionary<string, Tensor> tensors, RunState run, CausalLM model, LoraAdapters? adapters)
    {
        foreach (var (name, t) in tensors)
        {
            using var scope = NewDisposeScope();
            if (!t.isfinite().all().item<bool>())
                throw new InvalidDataException($"{Path.Combine(dir, WeightsFile)}: tensor '{name}' holds NaN or infinite values; the checkpoint is damaged");
        }
        Tensor Stored(string name) => tensors.TryGetValue(name, out var t) ? t
            : throw new InvalidDataException($"{Path.Combine(dir, WeightsFile)}: tensor '{name}' is missing");
        // A stored tensor must have the shape of what it restores (a rank in state.json, a damaged header).
        void CopyTo(Tensor destination, string name, Tensor stored)
        {
            if (!destination.shape.SequenceEqual(stored.shape))
                throw new InvalidDataException($"{Path.Combine(dir, WeightsFile)}: tensor '{name}' is [{string.Join(", ", stored.shape)}] " +
                    $"where this run needs [{string.Join(", ", destination.shape)}]; the checkpoint is damaged or from other options");
            destination.copy_(stored);
        }
        void Restore(Tensor destination, string name) => CopyTo(destination, name, Stored(name));
        using var _ = no_grad();
        if (adapters is not null)
        {
            foreach (var f in run.TiedScalings)
            {
                if (!adapters.Layers.TryGetValue(f.Layer, out var layer))
                    throw new InvalidDataException($"{dir}: checkpoint adapts '{f.Layer}', which this model has no LoRA on");
                // The rank sizes the factors ExtendChain allocates: it must be the stored factors' before anything is.
                var storedA = Stored($"{f.Layer}.lora_A");
                if (storedA.dim() != 2 || storedA.shape[0] != f.Rank)
                    throw new InvalidDataException($"{Path.Combine(dir, StateFile)}: '{f.Layer}' has rank {f.Rank} where its stored lora_A is " +
                        $"[{string.Join(", ", storedA.shape)}]; the checkpoint is damaged");
                layer.ExtendChain(f.Rank, f.Alpha);
                layer.RestoreTiedLinks(f.TiedScalings.Select((s, i) =>
                {
                    var (a, b) = (Stored($"{f.Layer}.tied{i}.A"), Stored($"{f.Layer}.tied{i}.B"));
                    if (a.dim() != 2 || b.dim() != 2 || a.shape[1] != layer.Base.InFeatures || b.shape[0] != layer.Base.OutFeatures || b.shape[1] != a.shape[0])
                        throw new InvalidDataException($"{Path.Combine(dir, WeightsFile)}: '{f.Layer}.tied{i}.A' [{string.Join(", ", a.shape)}] and .B " +
                            $"[{string.Join(", ", b.shape)}] are not a link of this {layer.Base.OutFeatures} x {layer.Base.InFeatures} layer");
                    return new LoraFactors(a, b, s);
                }));
                Restore(layer.A, $"{f.Layer}.lora_A");
                Restore(layer.B, $"{f.Layer}.lora_B");
                Restore(layer.Base.Weight, $"{f.Layer}.weight");
            }
        }
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, t) in tensors)
            if (parameters.TryGetValue(name, out var p) && !name.Contains(".lora.", StringComparison.Ordinal)) CopyTo(p, name, t);
    }

    /// <summary>Every value that defined the interrupted run must be the same now (a checkpoint without one, from before, is not checked).</summary>
    /// <summary>The fingerprint key holding its form's version (absent from checkpoints of the first form).</summary>
    public const string FingerprintVersionKey = "fingerprint";

    /// <summary>Keys of the first form whose values the second form writes differently.</summary>
    static readonly string[] RewordedInVersion2 = ["learning_rate", "optimizer"];

    internal static void CheckFingerprint(string dir, IReadOnlyDictionary<string, string> saved, IReadOnlyDictionary<string, string>? now)
    {
        if (saved.Count == 0 || now is null) return;
        // Written before fingerprints had a version: they named the settings in other words (the learning rate and
        // optimizer as sentences, LoRA and the chain as one line each), so only the keys both hold alike are compared.
        var keys = saved.ContainsKey(FingerprintVersionKey) || !now.ContainsKey(FingerprintVersionKey)
            ? saved.Keys.Union(now.Keys)
            : saved.Keys.Intersect(now.Keys).Except(RewordedInVersion2);
        foreach (var key in keys.Order(StringComparer.Ordinal))
        {
            var (before, after) = (saved.GetValueOrDefault(key, "(none)"), now.GetValueOrDefault(key, "(none)"));
            if (before != after)
                throw new InvalidDataException(
                    $"--resume {dir}: {key} was {before} in the interrupted run and is {after} now; resume with the same options and data");
        }
    }

    /// <summary>state.json's numbers against each other and the schedule: a hand-edited or damaged file is refused, naming the field.</summary>
    static void CheckRanges(string path, RunState run, ChainSchedule schedule, bool chain)
    {
        void Require(bool ok, string message) { if (!ok) throw new InvalidDataException($"{path}: {message}"); }
        // JSON null for a list or a name deserialises as null: every field must be present before its values are read.
        if (run.StepLosses is null || run.LinkFlops is null || run.TiedScalings is null || run.AutoKnots is null || run.Fingerprint is null
            || run.AutoKnots.Contains(null!) || run.Fingerprint.Values.Contains(null!))
            throw new InvalidDataException($"{path}: StepLosses, LinkFlops, TiedScalings, AutoKnots and Fingerprint must be present, without nulls");
        // Absent from checkpoints written before it existed (read as empty); null only when written so.
        Require(run.DeltaEffectiveRanks is not null && run.DeltaEffectiveRanks.All(double.IsFinite), "DeltaEffectiveRanks must be a list of finite numbers");
        Require(run.TiedScalings.All(f => f is { Layer: not null, TiedScalings: not null } && f.Rank >= 1 && double.IsFinite(f.Alpha) && f.Alpha > 0
                && f.TiedScalings.All(double.IsFinite)),
            "each TiedScalings entry needs a Layer, a Rank >= 1, a finite Alpha > 0 and finite scalings");
        Require(run.Step >= 0, $"Step {run.Step} must be >= 0");
        Require(run.Epoch >= 0 && run.BatchInEpoch >= 0, $"Epoch {run.Epoch} and BatchInEpoch {run.BatchInEpoch} must be >= 0");
        Require(run.StepLosses.Count == run.Step, $"{run.StepLosses.Count} StepLosses for Step {run.Step}");
        // Seconds become TimeSpans: a century is the most a run has plausibly spent.
        const double century = 100 * 365.25 * 86400;
        Require(run.Tokens >= 0 && run.ElapsedSeconds is >= 0 and < century && run.KnotSeconds is >= 0 and < century,
            "Tokens must be >= 0, ElapsedSeconds and KnotSeconds between 0 and a century");
        var knots = run.AutoKnots.Count > 0 ? run.AutoKnots.Count : schedule.Links.Count(l => l.Index > 0 && l.StartStep <= run.Step);
        Require(!chain || run.TiedScalings.All(f => f.TiedScalings.Count == knots),
            $"the layers record {string.Join("/", run.TiedScalings.Select(f => f.TiedScalings.Count).Distinct())} tied links where step {run.Step} follows {knots} knots");
    }

    /// <summary>
    /// The optimizer's moments and step counts, checked against this run's optimizer first (its
    /// options, each moment's dtype and shape, step counts up to <paramref name="step"/>) and refused
    /// naming the file. The caller checks the data position against its data (<see cref="MicroBatchFeed"/>).
    /// </summary>
    public static void RestoreOptimizer(string dir, Optimizer optimizer, int step)
    {
        var path = Path.Combine(dir, OptimizerFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: missing", path);
        var helper = Helper(optimizer);
        OptimizerStateFile.Check(path, helper, step);
        helper.load_state_dict(path);
        using var scope = NewDisposeScope();
        foreach (var (moment, i) in Moments(helper.state_dict()).Select((m, i) => (m, i)))
            if (!moment.isfinite().all().item<bool>())
                throw new InvalidDataException($"{path}: moment {i} holds NaN or infinite values; the checkpoint is damaged");
    }

    /// <summary>The live tensors <paramref name="optimizer"/> keeps per parameter (moments, momentum buffers, sums of squares).</summary>
    internal static IEnumerable<Tensor> Moments(Optimizer optimizer) => Moments(Helper(optimizer).state_dict());

    /// <summary>The tensors an optimizer keeps per parameter (moments, momentum buffers, sums of squares).</summary>
    static IEnumerable<Tensor> Moments(Optimizer.StateDictionary state) => state.State.SelectMany(s => s switch
    {
        TorchSharp.Modules.AdamW.State a => new[] { a.exp_avg, a.exp_avg_sq, a.max_exp_avg_sq },
        TorchSharp.Modules.SGD.State g => [g.momentum_buffer],
        TorchSharp.Modules.Adagrad.State g => [g.sum],
        _ => [],
    }).OfType<Tensor>();

    // TorchSharp's AdamW, SGD and Adagrad share OptimizerHelper, which carries the state I/O.
    static TorchSharp.Modules.OptimizerHelper Helper(Optimizer optimizer) =>
        optimizer as TorchSharp.Modules.OptimizerHelper
            ?? throw new NotSupportedException($"optimizer {optimizer.GetType().Name} cannot save its state");
}
