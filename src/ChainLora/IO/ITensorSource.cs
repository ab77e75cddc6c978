// The tensors of a checkpoint, read one at a time into memory the caller owns, so a model loads
// without a second copy of its weights (safetensors, PyTorch .bin, sharded sets of either).
using static TorchSharp.torch;

namespace ChainLora.IO;

/// <summary>One tensor as a checkpoint stores it: its dtype and shape, no data.</summary>
public sealed record StoredTensor(string Name, ScalarType DType, IReadOnlyList<long> Shape);

/// <summary>A readable index of checkpoint tensors. Errors name <see cref="Source"/> and the tensor.</summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file (or index file) that errors name.</summary>
    string Source { get; }

    /// <summary>Every tensor in the checkpoint by name, validated when the source was opened.</summary>
    IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    /// <summary>
    /// Copies tensor <paramref name="name"/> into <paramref name="destination"/>, which has the stored
    /// shape and any dtype and device: the stored values are converted as <c>copy_</c> converts them.
    /// At most one tensor's stored bytes are held as a temporary.
    /// </summary>
    void CopyTo(string name, Tensor destination);
}
