// The one place where checkpoint tensor names become parameter names, for every key layout the
// Hugging Face Hub publishes for Llama and OPT (as transformers' modeling_utils loads them):
//   - with the base model prefix "model." (saved from *ForCausalLM) or without it (saved from
//     OPTModel / LlamaModel, as the facebook/opt-* repositories are: "decoder.layers.0...");
//   - lm_head.weight present or absent when the head is tied to embed_tokens (ignored when
//     present: the model reads embed_tokens, as transformers' tie_weights makes it);
//   - the rotary_emb.inv_freq buffers older Llama checkpoints carry (recomputed here).
// Strict otherwise: missing, unexpected and wrong-shape keys are named, and nothing is copied then.
using ChainLora.IO;
using static TorchSharp.torch;

namespace ChainLora.Models;

public static class CheckpointLayout
{
    /// <summary>transformers' base_model_prefix for Llama and OPT.</summary>
    public const string BasePrefix = "model.";
    const string TiedHead = "lm_head.weight";

    /// <summary>
    /// Parameter name to stored name for every parameter of <paramref name="model"/>. Throws an
    /// InvalidDataException naming <paramref name="source"/> and the keys when a parameter has no
    /// tensor, a tensor has no parameter, or a shape differs.
    /// </summary>
    public static Dictionary<string, string> Map(nn.Module model, IReadOnlyDictionary<string, StoredTensor> stored, string source)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape, StringComparer.Ordinal);
        var mapping = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        foreach (var key in stored.Keys.Order(StringComparer.Ordinal))
        {
            var name = ParameterName(key, parameters);
            if (name is null)
            {
                if (!Ignorable(key, parameters)) unexpected.Add(key);
            }
            else if (!mapping.TryAdd(name, key))
                throw new InvalidDataException($"{source}: tensors '{mapping[name]}' and '{key}' both name parameter '{name}'");
        }
        var missing = parameters.Keys.Where(p => !mapping.ContainsKey(p)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException(
                $"{source}: checkpoint does not match the model." +
                (missing.Count > 0 ? $" Missing: {Shorten(missing)}." : "") +
                (unexpected.Count > 0 ? $" Unexpected: {Shorten(unexpected)}." : ""));
        foreach (var (name, key) in mapping)
            if (!stored[key].Shape.SequenceEqual(parameters[name]))
                throw new InvalidDataException($"{source}: tensor '{key}' has shape [{string.Join(", ", stored[key].Shape)}], " +
                    $"the model expects [{string.Join(", ", parameters[name])}] for '{name}'");
        return mapping;
    }

    /// <summary>
    /// Copies every parameter of <paramref name="model"/> from <paramref name="source"/>, one tensor at
    /// a time, converting to each parameter's dtype and device: no second copy of the model is held.
    /// </summary>
    public static void Load(nn.Module model, ITensorSource source)
    {
        var mapping = Map(model, source.Tensors, source.Source);
        using var _ = no_grad();
        foreach (var (name, parameter) in model.named_parameters()) source.CopyTo(mapping[name], parameter);
    }

    static string? ParameterName(string key, IReadOnlyDictionary<string, long[]> parameters)
    {
        if (parameters.ContainsKey(key)) return key;
        // A base-model checkpoint: its keys lack the prefix the causal-LM wrapper adds.
        return !key.StartsWith(BasePrefix, StringComparison.Ordinal) && parameters.ContainsKey(BasePrefix + key) ? BasePrefix + key : null;
    }

    static bool Ignorable(string key, IReadOnlyDictionary<string, long[]> parameters) =>
        (key == TiedHead && !parameters.ContainsKey(TiedHead))
        || key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    static string Shorten(List<string> keys) =>
        string.Join(", ", keys.Take(8)) + (keys.Count > 8 ? $" and {keys.Count - 8} more" : "");
}
