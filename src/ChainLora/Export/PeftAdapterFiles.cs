// PEFT's on-disk format (PeftModel.save_pretrained / PeftModel.from_pretrained): adapter_config.json
// plus adapter_model.safetensors with keys
//   base_model.model.<module path>.lora_A.weight   (r, in)
//   base_model.model.<module path>.lora_B.weight   (out, r)
//   base_model.model.<module path>.base_layer.bias trained bias of an adapted layer (PEFT >= 0.7
//                                                  wraps it as base_layer; "<module path>.bias" is read too)
//   base_model.model.<parameter name>              other trained biases (bias "all")
using System.Text.RegularExpressions;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Runtime;
using static TorchSharp.torch;

namespace ChainLora.Export;

public sealed partial class PeftAdapter
{
    public const string WeightsFileName = "adapter_model.safetensors";
    const string PickleFileName = "adapter_model.bin";
    const string Prefix = "base_model.model.";
    const string BaseLayerBias = ".base_layer.bias";

    static string KeyA(string module) => $"{Prefix}{module}.lora_A.weight";
    static string KeyB(string module) => $"{Prefix}{module}.lora_B.weight";

    /// <summary>
    /// Writes adapter_config.json and adapter_model.safetensors (fp32) into <paramref name="dir"/>,
    /// whole or not at all. Refuses to replace a folder holding other files unless <paramref name="overwrite"/>.
    /// </summary>
    public void Save(string dir, string? baseModelNameOrPath = null, bool overwrite = false)
    {
        var config = Config with { BaseModelNameOrPath = baseModelNameOrPath ?? Config.BaseModelNameOrPath };
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (module, f) in Modules)
        {
            tensors[KeyA(module)] = f.A;
            tensors[KeyB(module)] = f.B;
        }
        foreach (var (name, bias) in Biases) tensors[BiasKey(name)] = bias;
        // An adapter that computes NaN is no export: refuse it, as the merged export does.
        using (no_grad())
            foreach (var (key, t) in tensors)
                if (!t.isfinite().all().item<bool>())
                    throw new InvalidDataException($"refusing to export: adapter tensor '{key}' holds NaN or infinite values");
        ExportDirectory.Write(dir, overwrite, temp =>
        {
            File.WriteAllText(Path.Combine(temp, PeftAdapterConfig.FileName), config.ToJson());
            SafeTensors.Save(Path.Combine(temp, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        });
    }

    string BiasKey(string name) =>
        Modules.ContainsKey(name[..^".bias".Length]) ? Prefix + name[..^".bias".Length] + BaseLayerBias : Prefix + name;

    [GeneratedRegex(@"^(?<module>.+)\.(?<kind>lora_A|lora_B)(\.(?<adapter>[^.]+))?\.weight$")]
    private static partial Regex FactorKey();

    /// <summary>
    /// Reads a PEFT LoRA adapter folder, ours or one PEFT wrote: keys with or without the adapter
    /// name (".lora_A.weight" or ".lora_A.default.weight"), rank_pattern / alpha_pattern and
    /// use_rslora honoured. Which modules carry LoRA is read from the tensors (target_modules and
    /// layers_to_transform only told PEFT where to create them). The pickle format
    /// (adapter_model.bin) is refused. Errors name the file, the key and the shapes.
    /// </summary>
    public static PeftAdapter Load(string dir)
    {
        NativeRuntime.Ensure();
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"adapter directory not found: {dir}");
        var config = PeftAdapterConfig.Read(Path.Combine(dir, PeftAdapterConfig.FileName));
        var weights = Path.Combine(dir, WeightsFileName);
        if (!File.Exists(weights))
        {
            if (File.Exists(Path.Combine(dir, PickleFileName)))
                throw new InvalidDataException(
                    $"{Path.Combine(dir, PickleFileName)}: pickle checkpoints are not supported (they can run code when read); " +
                    $"save the adapter as {WeightsFileName}, e.g. in Python: PeftModel.from_pretrained(base, dir).save_pretrained(out, safe_serialization=True)");
            throw new FileNotFoundException($"{weights} not found", weights);
        }

        var tensors = SafeTensors.Load(weights, castTo: ScalarType.Float32);
        try
        {
            return FromTensors(config, tensors, weights);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    static PeftAdapter FromTensors(PeftAdapterConfig config, Dictionary<string, Tensor> tensors, string source)
    {
        var a = new Dictionary<string, string>(StringComparer.Ordinal);
        var b = new Dictionary<string, string>(StringComparer.Ordinal);
        var biasKeys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var key in tensors.Keys.Order(StringComparer.Ordinal))
        {
            if (!key.StartsWith(Prefix, StringComparison.Ordinal))
                throw new InvalidDataException($"{source}: tensor '{key}' does not start with '{Prefix}' as PEFT's keys do");
            var rest = key[Prefix.Length..];
            if (FactorKey().Match(rest) is { Success: true } m)
            {
                var into = m.Groups["kind"].Value == "lora_A" ? a : b;
                var module = m.Groups["module"].Value;
                if (!into.TryAdd(module, key))
                    throw new InvalidDataException($"{source}: tensors '{into[module]}' and '{key}' are both {m.Groups["kind"].Value} of '{module}' " +
                        "(several adapters in one file are not supported)");
            }
            else if (rest.EndsWith(".bias", StringComparison.Ordinal) && !rest.Contains("lora_", StringComparison.Ordinal))
            {
                var name = rest.EndsWith(BaseLayerBias, StringComparison.Ordinal) ? rest[..^BaseLayerBias.Length] + ".bias" : rest;
                if (!biasKeys.TryAdd(name, key))
                    throw new InvalidDataException($"{source}: tensors '{biasKeys[name]}' and '{key}' are both the bias '{name}'");
            }
            else
                throw new InvalidDataException($"{source}: tensor '{key}' is not supported; only LoRA on linear layers " +
                    "(lora_A / lora_B weights) and biases are (no lora_embedding, DoRA magnitudes or LoRA biases)");
        }
        if (biasKeys.Count > 0 && config.Bias == LoraBias.None)
            throw new InvalidDataException($"{source}: tensor '{biasKeys.Values.First()}' is a bias but the config says bias 'none'");
        foreach (var module in a.Keys.Union(b.Keys))
        {
            if (!a.ContainsKey(module)) throw new InvalidDataException($"{source}: '{b[module]}' has no lora_A partner");
            if (!b.ContainsKey(module)) throw new InvalidDataException($"{source}: '{a[module]}' has no lora_B partner");
        }
        if (a.Count == 0) throw new InvalidDataException($"{source}: no lora_A / lora_B tensors");

        var modules = new Dictionary<string, LoraFactors>(StringComparer.Ordinal);
        foreach (var (module, keyA) in a)
        {
            var (ta, tb) = (tensors[keyA], tensors[b[module]]);
            if (ta.dim() != 2 || tb.dim() != 2 || ta.shape[0] != tb.shape[1])
                throw new InvalidDataException($"{source}: '{keyA}' has shape {Shape(ta)} and '{b[module]}' {Shape(tb)}; " +
                    "expected (r, in) and (out, r) with the same r");
            if (ta.shape[0] != config.RankOf(module))
                throw new InvalidDataException($"{source}: '{keyA}' has shape {Shape(ta)}, rank {ta.shape[0]}, " +
                    $"but adapter_config.json gives '{module}' rank {config.RankOf(module)} (r / rank_pattern)");
            modules[module] = new LoraFactors(ta.clone(), tensors[b[module]].clone(), config.ScalingOf(module));
        }
        var biases = biasKeys.ToDictionary(kv => kv.Key, kv => tensors[kv.Value].clone());
        return new PeftAdapter(config, modules, biases, a.ToDictionary(kv => kv.Key, kv => (kv.Value, b[kv.Key])), biasKeys);
    }
}
