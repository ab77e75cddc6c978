using ChainLora.IO;
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>Key-by-key copies between in-memory tensors and modules, with asserts on count and shape.</summary>
public static class StateDict
{
    /// <summary>
    /// Copies every tensor of <paramref name="tensors"/> into the parameter of the same name (casting
    /// to the parameter's dtype), through <see cref="CheckpointLayout"/>'s name mapping. Throws, naming
    /// <paramref name="source"/> and the keys, when a parameter is missing, a key is unexpected, or a
    /// shape differs; nothing is copied then.
    /// </summary>
    public static void LoadStrict(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source) =>
        CheckpointLayout.Load(model, new TensorDictionarySource(tensors, source));

    /// <summary>Sorted "name [d0, d1]" lines, as in the committed manifest approval files.</summary>
    public static IEnumerable<string> Manifest(nn.Module model) =>
        model.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}]").Order(StringComparer.Ordinal);
}
