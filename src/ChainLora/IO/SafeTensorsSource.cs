// One .safetensors file as an ITensorSource: the header is validated on open, and each tensor's
// bytes are read on demand straight into the destination's memory when dtype and layout allow.
using ChainLora.Runtime;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace ChainLora.IO;

public sealed class SafeTensorsSource : ITensorSource
{
    readonly SafeFileHandle handle;
    readonly SafeTensorsFile file;

    SafeTensorsSource(SafeFileHandle handle, SafeTensorsFile file)
    {
        (this.handle, this.file) = (handle, file);
        Tensors = file.Tensors.Values.ToDictionary(t => t.Name, t => new StoredTensor(t.Name, t.ScalarType, t.Shape), StringComparer.Ordinal);
    }

    public string Source => file.Path;
    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    /// <summary>Opens <paramref name="path"/> and validates its header; no tensor data is read.</summary>
    public static SafeTensorsSource Open(string path)
    {
        NativeRuntime.Ensure();
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            return new SafeTensorsSource(handle, SafeTensors.ReadHeader(path, handle));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void CopyTo(string name, Tensor destination)
    {
        if (!file.Tensors.TryGetValue(name, out var info))
            throw new KeyNotFoundException($"{file.Path}: no tensor '{name}'");
        if (!destination.shape.SequenceEqual(info.Shape))
            throw new ArgumentException($"{file.Path}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}], " +
                $"the destination [{string.Join(", ", destination.shape)}]");
        using var _ = no_grad();
        var offset = file.DataStart + info.Begin;
        // Same dtype, contiguous, on the CPU: the file's bytes are the destination's bytes.
        if (destination.dtype == info.ScalarType && info.ScalarType != ScalarType.Bool
            && destination.device_type == TorchSharp.DeviceType.CPU && destination.is_contiguous())
        {
            SafeTensors.ForEachChunk(destination, (chunk, at) => SafeTensors.ReadExactly(file.Path, handle, chunk, offset + at));
            return;
        }
        var stored = info.ScalarType == ScalarType.Bool ? ScalarType.Byte : info.ScalarType;
        using var staging = empty(info.Shape.ToArray(), stored, CPU);
        SafeTensors.ForEachChunk(staging, (chunk, at) => SafeTensors.ReadExactly(file.Path, handle, chunk, offset + at));
        if (info.ScalarType == ScalarType.Bool)
        {
            using var flags = staging.ne(0);
            destination.copy_(flags);
        }
        else destination.copy_(staging);
    }

    public void Dispose() => handle.Dispose();
}
