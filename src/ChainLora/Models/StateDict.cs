using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>Key-by-key copies between checkpoints and modules, with asserts on count and shape.</summary>
public static class StateDict
{
    /// <summary>
    /// Copies every tensor of <paramref name="tensors"/> into the parameter of the same name
    /// (casting to the parameter's dtype). Throws, naming <paramref name="source"/> and the keys,
    /// when a parameter is missing, a key is unexpected, or a shape differs; nothing is copied then.
    /// <paramref name="optional"/> keys may appear in the file without a matching parameter
    /// (e.g. a tied lm_head.weight, or old rotary inv_freq buffers).
    /// <paramref name="include"/> restricts which model parameters are expected (default: all).
    /// </summary>
    public static void LoadStrict(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source,
        Func<string, bool>? optional = null, Func<string, bool>? include = null)
    {
        var parameters = model.named_parameters()
            .Where(p => include?.Invoke(p.name) ?? true)
            .ToDictionary(p => p.name, p => p.parameter);
        var missing = parameters.Keys.Where(k => !tensors.ContainsKey(k)).Order().ToList();
        var unexpected = tensors.Keys.Where(k => !parameters.ContainsKey(k) && !(optional?.Invoke(k) ?? false)).Order().ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException(
                $"{source}: checkpoint does not match the model." +
                (missing.Count > 0 ? $" Missing: {Shorten(missing)}." : "") +
                (unexpected.Count > 0 ? $" Unexpected: {Shorten(unexpected)}." : ""));
        foreach (var (name, p) in parameters)
        {
            var t = tensors[name];
            if (!t.shape.SequenceEqual(p.shape))
                throw new InvalidDataException(
                    $"{source}: tensor '{name}' has shape [{string.Join(", ", t.shape)}], the model expects [{string.Join(", ", p.shape)}]");
        }
        using var _ = no_grad();
        foreach (var (name, p) in parameters) p.copy_(tensors[name]);
    }

    static string Shorten(List<string> keys) =>
        string.Join(", ", keys.Take(8)) + (keys.Count > 8 ? $" and {keys.Count - 8} more" : "");

    /// <summary>Sorted "name [d0, d1]" lines, as in the committed manifest approval files.</summary>
    public static IEnumerable<string> Manifest(nn.Module model) =>
        model.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}]").Order(StringComparer.Ordinal);
}
