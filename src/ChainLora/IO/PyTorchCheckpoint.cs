// Placeholder until the PyTorch .bin reader lands (branch pytorch-bin).
using static TorchSharp.torch;

namespace ChainLora.IO;

public sealed class PyTorchCheckpoint : ITensorSource
{
    public string Source => throw new NotSupportedException();
    public IReadOnlyDictionary<string, StoredTensor> Tensors => throw new NotSupportedException();
    public static PyTorchCheckpoint Open(string path) => throw new NotSupportedException($"{path}: PyTorch checkpoints are not read yet");
    public void CopyTo(string name, Tensor destination) => throw new NotSupportedException();
    public void Dispose() { }
}
