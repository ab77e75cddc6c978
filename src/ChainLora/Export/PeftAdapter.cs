// A LoRA adapter as Hugging Face PEFT holds one (PeftModel with a LoraConfig): per module,
// delta W = scaling * B A with scaling = alpha / r (alpha / sqrt(r) under rsLoRA), plus trained
// biases. PeftAdapterFiles.cs reads and writes PEFT's files; this file builds adapters from a
// chain and applies them to a model.
//
// A COLA chain exports as ONE adapter (paper, Algorithm 1: W = W0 + sum_i s_i B_i A_i): stacking
// the links' factors, A = [A_1; ...; A_M] (R, in) and B = [s_1 B_1, ..., s_M B_M] (out, R), gives
// B A = sum_i s_i B_i A_i exactly, at rank R = sum_i r_i, written with lora_alpha = r = R (scale 1).
using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;
using Linear = ChainLora.Models.Linear;

namespace ChainLora.Export;

public sealed partial class PeftAdapter : IDisposable
{
    public PeftAdapterConfig Config { get; }
    /// <summary>Factors by module path ("model.layers.0.self_attn.q_proj"); scalings follow <see cref="Config"/>.</summary>
    public IReadOnlyDictionary<string, LoraFactors> Modules { get; }
    /// <summary>Trained biases by parameter name ("model.decoder.layers.0.self_attn.q_proj.bias"), fp32 on the CPU.</summary>
    public IReadOnlyDictionary<string, Tensor> Biases { get; }
    // The file key each module's factors came from, so errors name what the user can find in the file.
    readonly IReadOnlyDictionary<string, (string A, string B)> keys;
    readonly IReadOnlyDictionary<string, string> biasKeys;

    PeftAdapter(PeftAdapterConfig config, IReadOnlyDictionary<string, LoraFactors> modules, IReadOnlyDictionary<string, Tensor> biases,
        IReadOnlyDictionary<string, (string, string)>? keys = null, IReadOnlyDictionary<string, string>? biasKeys = null)
    {
        (Config, Modules, Biases) = (config, modules, biases);
        this.keys = keys ?? modules.Keys.ToDictionary(m => m, m => (KeyA(m), KeyB(m)));
        this.biasKeys = biasKeys ?? biases.Keys.ToDictionary(b => b, BiasKey);
    }

    /// <summary>
    /// The adapter equal to a trained chain: its tied links plus the current link, stacked, so
    /// applying it to the original pretrained weights W0 gives the trained model. With one link, that
    /// link's A, B, r and alpha are kept as they are. A link whose B is zero on every layer (e.g. a
    /// link extended but never trained) adds nothing and is left out, so it costs no rank.
    /// Biases trained per <see cref="LoraConfig.Bias"/> are included with their current values.
    /// </summary>
    public static PeftAdapter FromChain(LoraAdapters adapters)
    {
        using var scope = NewDisposeScope();
        return FromLinks(adapters.Model, ChainLinks(adapters), TrainedBiases(adapters), adapters.Config.Dropout, adapters.Config.UseRsLora);
    }

    /// <summary>Each link of the chain (tied ones, then the current one) as module path -> factors, sharing the layers' tensors.</summary>
    internal static List<IReadOnlyDictionary<string, LoraFactors>> ChainLinks(LoraAdapters adapters)
    {
        var count = adapters.Layers.Values.First().TiedLinks.Count + 1;
        return Enumerable.Range(0, count).Select(i => (IReadOnlyDictionary<string, LoraFactors>)adapters.Layers.ToDictionary(
            l => l.Key,
            l => i < l.Value.TiedLinks.Count
                ? l.Value.TiedLinks[i]
                : new LoraFactors(l.Value.A.detach(), l.Value.B.detach(), l.Value.Scaling))).ToList();
    }

    /// <summary>The biases that train under the adapters' <see cref="LoraConfig.Bias"/>, copied to the CPU in fp32.</summary>
    internal static Dictionary<string, Tensor> TrainedBiases(LoraAdapters adapters, IEnumerable<string>? also = null)
    {
        var extra = also?.ToHashSet() ?? [];
        return adapters.Model.named_parameters()
            .Where(p => extra.Contains(p.name) || p.name.EndsWith(".bias", StringComparison.Ordinal) && adapters.Config.Bias switch
            {
                LoraBias.All => true,
                LoraBias.LoraOnly => adapters.Layers.ContainsKey(p.name[..^".bias".Length]),
                _ => false,
            })
            .ToDictionary(p => p.name, p => p.parameter.detach().cpu().to(ScalarType.Float32).clone());
    }

    /// <summary>
    /// Stacks <paramref name="links"/> (each: module path -> factors; a module may sit out a link)
    /// into one adapter as described in the file header. Takes copies; the caller keeps its tensors.
    /// target_modules are the modules' final names ("q_proj") when those pick out exactly the adapted
    /// linear layers of <paramref name="model"/>, else the full paths. <paramref name="dropout"/> is
    /// recorded for whoever trains the adapter further. A single link trained with rsLoRA
    /// (<paramref name="useRsLora"/>) is written as PEFT's use_rslora with its own alpha; a stacked
    /// chain has its scales folded into B and is written without it.
    /// </summary>
    public static PeftAdapter FromLinks(nn.Module model, IReadOnlyList<IReadOnlyDictionary<string, LoraFactors>> links,
        IReadOnlyDictionary<string, Tensor> biases, double dropout = 0, bool useRsLora = false)
    {
        if (links.Count == 0 || links.All(l => l.Count == 0)) throw new ArgumentException("a chain needs at least one link with modules");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var live = links.Where(l => l.Values.Any(f => f.B.count_nonzero().item<long>() > 0)).ToList();
        if (live.Count == 0) live = [links.Last(l => l.Count > 0)];
        var paths = live.SelectMany(l => l.Keys).Distinct().Order(StringComparer.Ordinal).ToList();

        Dictionary<string, LoraFactors> modules;
        int r;
        double alpha;
        var rankPattern = new Dictionary<string, int>();
        var single = live[0].Values.First();
        var rsLora = false;
        if (live.Count == 1 && live[0].Values.All(f => f.Rank == single.Rank && f.Scaling == single.Scaling))
        {
            // One link: keep it as PEFT itself would have saved it.
            modules = live[0].ToDictionary(m => m.Key, m => new LoraFactors(
                m.Value.A.to(ScalarType.Float32, CPU, copy: true).DetachFromDisposeScope(),
                m.Value.B.to(ScalarType.Float32, CPU, copy: true).DetachFromDisposeScope(), m.Value.Scaling));
            (r, alpha, rsLora) = (single.Rank, Snap(single.Scaling * (useRsLora ? Math.Sqrt(single.Rank) : single.Rank)), useRsLora);
        }
        else
        {
            modules = paths.ToDictionary(p => p, p =>
            {
                var parts = live.Where(l => l.ContainsKey(p)).Select(l => l[p]).ToList();
                var a = cat(parts.Select(f => f.A.to(ScalarType.Float32, CPU)).ToList(), 0);                // (R, in)
                var b = cat(parts.Select(f => f.B.to(ScalarType.Float32, CPU) * f.Scaling).ToList(), 1);    // (out, R)
                return new LoraFactors(a.DetachFromDisposeScope(), b.DetachFromDisposeScope(), 1.0);
            });
            // Scale 1 everywhere: lora_alpha = r, and each module whose rank differs gets r and alpha overrides.
            r = modules.Values.GroupBy(f => f.Rank).OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key).First().Key;
            alpha = r;
            foreach (var (path, f) in modules.Where(m => m.Value.Rank != r)) rankPattern[path] = f.Rank;
        }
        var config = new PeftAdapterConfig
        {
            R = r,
            LoraAlpha = alpha,
            UseRsLora = rsLora,
            LoraDropout = dropout,
            TargetModules = TargetModulesFor(model, paths),
            Bias = biases.Count == 0 ? LoraBias.None
                : biases.Keys.All(b => modules.ContainsKey(b[..^".bias".Length])) ? LoraBias.LoraOnly : LoraBias.All,
            RankPattern = rankPattern,
            AlphaPattern = rankPattern.ToDictionary(kv => kv.Key, kv => (double)kv.Value),
        };
        return new PeftAdapter(config, modules,
            biases.ToDictionary(b => b.Key, b => b.Value.to(ScalarType.Float32, CPU, copy: true).DetachFromDisposeScope()));
    }

    // alpha = scaling * r is exact in real numbers; undo the rounding of alpha / r * r.
    internal static double Snap(double x) => Math.Abs(x - Math.Round(x)) < 1e-9 * Math.Max(1, Math.Abs(x)) ? Math.Round(x) : x;

    static List<string> TargetModulesFor(nn.Module model, IReadOnlyList<string> paths)
    {
        var linears = model.named_modules().Where(m => m.module is Linear).Select(m => m.name).ToList();
        var names = paths.Select(p => p[(p.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal).ToList();
        var picked = linears.Where(l => names.Any(n => l == n || l.EndsWith("." + n, StringComparison.Ordinal))).ToHashSet();
        return picked.SetEquals(paths) ? names : [.. paths];
    }

    static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";

    /// <summary>
    /// Adds scaling * B A to each targeted frozen weight of <paramref name="model"/> (formed in fp32,
    /// rounded once to the weight's dtype) and copies the biases in. Every module, shape and value is
    /// checked first, so a refusal leaves the model untouched. Use this for eval, and for train
    /// --adapter: the adapter is tied in as the chain's first knot, then training starts a fresh chain
    /// (pass the adapter to <see cref="RunArtifacts.SaveChain"/> so exports stay relative to W0).
    /// </summary>
    public void MergeInto(CausalLM model)
    {
        var (linears, biasParams) = Resolve(model);
        using var _ = no_grad();
        foreach (var (module, f) in Modules)
            if (!WeightMerge.IsFinite(f.A, f.B, f.Scaling))
                throw new InvalidDataException($"refusing to merge: the LoRA delta of '{module}' ({keys[module].A}) is not finite");
        foreach (var (module, f) in Modules) WeightMerge.AddInPlace(linears[module].Weight, f.A, f.B, f.Scaling);
        foreach (var (name, bias) in Biases) biasParams[name].copy_(bias);
    }

    /// <summary>The adapter in <paramref name="folder"/> merged into <paramref name="model"/> (<see cref="MergeInto"/>), for eval and chat.</summary>
    public static void MergeFolderInto(string folder, CausalLM model)
    {
        using var adapter = Load(folder);
        adapter.MergeInto(model);
    }

    /// <summary>
    /// Injects a live LoRA link holding this adapter's A and B (trainable, unmerged): the model then
    /// computes what <see cref="MergeInto"/> would give. Needs one rank and alpha for every module
    /// (no rank_pattern / alpha_pattern), since <see cref="LoraAdapters"/> injects a single config.
    /// </summary>
    public LoraAdapters AttachTo(CausalLM model, double dropout = 0, LoraInit init = LoraInit.Kaiming)
    {
        var (_, biasParams) = Resolve(model);
        var ranks = Modules.Values.Select(f => f.Rank).Distinct().ToList();
        var scalings = Modules.Values.Select(f => f.Scaling).Distinct().ToList();
        if (ranks.Count != 1 || scalings.Count != 1)
            throw new ArgumentException($"the adapter's modules differ in rank or alpha (ranks {string.Join(", ", ranks)}); " +
                "a live LoRA needs one of each: merge it into the weights instead");
        var lora = new LoraConfig
        {
            Rank = ranks[0], Alpha = Config.AlphaOf(Modules.Keys.First()), UseRsLora = Config.UseRsLora,
            Dropout = dropout, TargetModules = [.. Modules.Keys], Bias = Config.Bias, Init = init,
        };
        var adapters = LoraAdapters.Inject(model, lora);
        adapters.LoadFactors(Modules.ToDictionary(m => m.Key, m => (m.Value.A, m.Value.B)));
        using var _ = no_grad();
        foreach (var (name, bias) in Biases) biasParams[name].copy_(bias);
        return adapters;
    }

    /// <summary>Maps every module to a Linear of the model and every bias to a parameter; throws naming the key.</summary>
    (Dictionary<string, Linear>, Dictionary<string, TorchSharp.Modules.Parameter>) Resolve(CausalLM model)
    {
        var all = model.named_modules().Where(m => m.module is Linear).ToDictionary(m => m.name, m => (Linear)m.module);
        var linears = new Dictionary<string, Linear>(StringComparer.Ordinal);
        foreach (var (module, f) in Modules)
        {
            if (!all.TryGetValue(module, out var linear))
                throw new InvalidDataException($"adapter tensor '{keys[module].A}': the {model.ModelType} model has no linear layer '{module}'");
            if (f.A.shape[1] != linear.InFeatures)
                throw new InvalidDataException($"adapter tensor '{keys[module].A}' has shape {Shape(f.A)}, " +
                    $"but '{module}' takes {linear.InFeatures} inputs: expected [{f.Rank}, {linear.InFeatures}]");
            if (f.B.shape[0] != linear.OutFeatures)
                throw new InvalidDataException($"adapter tensor '{keys[module].B}' has shape {Shape(f.B)}, " +
                    $"but '{module}' has {linear.OutFeatures} outputs: expected [{linear.OutFeatures}, {f.Rank}]");
            linears[module] = linear;
        }
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, bias) in Biases)
        {
            if (!parameters.TryGetValue(name, out var p))
                throw new InvalidDataException($"adapter tensor '{biasKeys[name]}': the {model.ModelType} model has no parameter '{name}'");
            if (!p.shape.SequenceEqual(bias.shape))
                throw new InvalidDataException($"adapter tensor '{biasKeys[name]}' has shape {Shape(bias)}, the model's is {Shape(p)}");
        }
        return (linears, Biases.Keys.ToDictionary(n => n, n => parameters[n]));
    }

    public void Dispose()
    {
        foreach (var f in Modules.Values) { f.A.Dispose(); f.B.Dispose(); }
        foreach (var t in Biases.Values) t.Dispose();
    }
}
