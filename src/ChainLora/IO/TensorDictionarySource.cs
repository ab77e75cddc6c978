// Tensors already in memory (a llama2.c file, a model's own weights) as an ITensorSource, so they
// load through the same strict name mapping as checkpoint files.
using static TorchSharp.torch;

namespace ChainLora.IO;

public sealed class TensorDictionarySource(IReadOnlyDictionary<string, Tensor> tensors, string source) : ITensorSource
{
    public string Source { get; } = source;

    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; } =
        tensors.ToDictionary(kv => kv.Key, kv => new StoredTensor(kv.Key, kv.Value.dtype, kv.Value.shape), StringComparer.Ordinal);

    public void CopyTo(string name, Tensor destination)
    {
        using var _ = no_grad();
        destination.copy_(tensors[name]);
    }

    /// <summary>The tensors belong to the caller.</summary>
    public void Dispose() { }
}
