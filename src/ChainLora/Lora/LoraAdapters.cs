// Model surgery (PEFT's LoraModel): walk the modules, attach a LoraLinear to every targeted
// Linear, freeze everything else. Knots and chain extensions then apply to all adapted layers.
using ChainLora.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Linear = ChainLora.Models.Linear;

namespace ChainLora.Lora;

public sealed class LoraAdapters
{
    const string SidePathName = "lora";

    public LoraConfig Config { get; }
    /// <summary>Adapted layers by module path ("model.layers.0.self_attn.q_proj").</summary>
    public IReadOnlyDictionary<string, LoraLinear> Layers { get; }
    public nn.Module Model { get; }

    LoraAdapters(nn.Module model, LoraConfig config, IReadOnlyDictionary<string, LoraLinear> layers) =>
        (Model, Config, Layers) = (model, config, layers);

    /// <summary>
    /// Adapts every <see cref="Linear"/> of <paramref name="model"/> whose path equals a target or
    /// ends with "." + target. Afterwards only LoRA parameters (and biases per
    /// <see cref="LoraConfig.Bias"/>) require gradients. Throws if nothing matches or the model
    /// already carries adapters.
    /// </summary>
    public static LoraAdapters Inject(nn.Module model, LoraConfig config)
    {
        config = Resolved(model, config);
        var targets = Targets(model, config);
        if (targets.Any(t => t.Linear.SidePaths.Count > 0))
            throw new InvalidOperationException("the model already carries LoRA adapters");

        foreach (var (_, p) in model.named_parameters()) p.requires_grad = false;
        var layers = new Dictionary<string, LoraLinear>();
        foreach (var (name, linear) in targets)
        {
            var lora = new LoraLinear(linear, config);
            linear.Attach(SidePathName, lora);
            layers[name] = lora;
        }
        foreach (var (name, p) in model.named_parameters())
        {
            var isLora = name.Contains($".{SidePathName}.lora_", StringComparison.Ordinal);
            p.requires_grad = isLora || TrainsBias(name, config, layers.ContainsKey);
        }
        return new LoraAdapters(model, config, layers);
    }

    /// <summary>
    /// What <see cref="Inject"/> would add to <paramref name="model"/>, counted without allocating:
    /// the layers adapted, the elements of A (r, in) and B (out, r) per unit of rank (the sum of
    /// in + out over those layers), and the bias elements that would train with them.
    /// </summary>
    public static (int Layers, long ElementsPerRank, long BiasElements) Footprint(nn.Module model, LoraConfig config)
    {
        var targets = Targets(model, Resolved(model, config));
        var names = targets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var biases = model.named_parameters().Where(p => TrainsBias(p.name, config, names.Contains)).Sum(p => p.parameter.numel());
        return (targets.Count, targets.Sum(t => t.Linear.InFeatures + t.Linear.OutFeatures), biases);
    }

    /// <summary>PEFT's all-linear leaves out the output layer (model.get_output_embeddings()); ours is lm_head when untied.</summary>
    const string OutputLayer = "lm_head";

    /// <summary><paramref name="config"/> with the model family's default targets when it names none (<see cref="LoraConfig.Targets"/>).</summary>
    static LoraConfig Resolved(nn.Module model, LoraConfig config) =>
        config.TargetModules.Count > 0 ? config
            : model is CausalLM lm ? config.WithTargetsFor(lm.ModelType)
            : throw new ArgumentException("LoRA target modules: none given, and the model has no family defaults");

    /// <summary>
    /// Every <see cref="Linear"/> whose path equals a target or ends with "." + target, or under
    /// <see cref="LoraConfig.AllLinear"/> every one but the output layer; throws if none does.
    /// </summary>
    static List<(string Name, Linear Linear)> Targets(nn.Module model, LoraConfig config)
    {
        config.Validate();
        var allLinear = config.TargetModules is [LoraConfig.AllLinear];
        var targets = model.named_modules()
            .Where(m => m.module is Linear && (allLinear ? m.name != OutputLayer : config.TargetModules.Any(t => Matches(m.name, t))))
            .Select(m => (m.name, (Linear)m.module))
            .ToList();
        if (targets.Count == 0)
            throw new ArgumentException(
                $"LoRA target modules [{string.Join(", ", config.TargetModules)}] match no linear layer of the model");
        return targets;
    }

    /// <summary>Whether the parameter <paramref name="name"/> is a bias that trains under <see cref="LoraConfig.Bias"/>.</summary>
    static bool TrainsBias(string name, LoraConfig config, Func<string, bool> isAdapted)
    {
        if (!name.EndsWith(".bias", StringComparison.Ordinal)) return false;
        return config.Bias == LoraBias.All || (config.Bias == LoraBias.LoraOnly && isAdapted(name[..^".bias".Length]));
    }

    static bool Matches(string path, string target) =>
        path == target || path.EndsWith("." + target, StringComparison.Ordinal);

    /// <summary>The parameters that train: LoRA A and B of every layer, plus configured biases.</summary>
    public List<Parameter> TrainableParameters() =>
        Model.parameters().Where(p => p.requires_grad).ToList();

    /// <summary>Tie a knot (Algorithm 1 line 6) on every adapted layer.</summary>
    public void TieKnot()
    {
        // Check every layer first so that a refusal leaves all weights untouched.
        foreach (var (name, layer) in Layers)
            if (layer.KnotRefusal() is { } why)
                throw new KnotRefusedException($"refusing to tie a knot: '{name}': {why}");
        foreach (var layer in Layers.Values)
        {
            layer.TieKnot();
            Runtime.FaultInjection.Point("knot");
        }
    }

    /// <summary>Every layer's A stops training (RAC-LoRA: a random A, frozen; only B learns).</summary>
    public void FreezeA()
    {
        foreach (var layer in Layers.Values) layer.A.requires_grad = false;
    }

    /// <summary>Extend the chain (Algorithm 1 line 7): fresh A, B = 0 at <paramref name="rank"/>.</summary>
    public void ExtendChain(int rank, double alpha)
    {
        foreach (var layer in Layers.Values) layer.ExtendChain(rank, alpha);
    }

    /// <summary>
    /// Overwrites the live link of every adapted layer with the given A (r, in) and B (out, r)
    /// (<see cref="LoraLinear.LoadFactors"/>); <paramref name="factors"/> names each adapted layer exactly
    /// once, by module path, and nothing else. Every name and shape is checked before any value is copied.
    /// </summary>
    public void LoadFactors(IReadOnlyDictionary<string, (Tensor A, Tensor B)> factors)
    {
        if (factors.Keys.FirstOrDefault(k => !Layers.ContainsKey(k)) is { } unknown)
            throw new ArgumentException($"LoRA factors for '{unknown}': no adapted layer has that name");
        if (Layers.Keys.FirstOrDefault(k => !factors.ContainsKey(k)) is { } missing)
            throw new ArgumentException($"LoRA factors: none given for the adapted layer '{missing}'");
        foreach (var (name, (a, b)) in factors)
            if (Layers[name].Misfit(a, b) is { } why) throw new ArgumentException($"LoRA factors for '{name}': {why}");
        foreach (var (name, (a, b)) in factors) Layers[name].LoadFactors(a, b);
    }

    /// <summary>Per layer: the sum of every tied link's delta plus the current link's, (out, in) fp32.</summary>
    public Dictionary<string, Tensor> TotalDeltas()
    {
        using var _ = no_grad();
        return Layers.ToDictionary(l => l.Key, l =>
        {
            var total = l.Value.DeltaWeight().cpu();
            foreach (var link in l.Value.TiedLinks) total = total + link.Delta();
            return total;
        });
    }
}
