// torch.nn.Embedding, created with N(0, 1) weights like torch or left uninitialised for a checkpoint.
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ChainLora.Models;

static class Embeddings
{
    /// <summary>A trainable (num, dim) embedding in <paramref name="dtype"/>.</summary>
    public static Embedding Create(long num, long dim, ScalarType dtype, Device? device, bool initialize)
    {
        if (initialize) return nn.Embedding(num, dim, dtype: dtype, device: device);
        // Built on the meta device, then given an uninitialised weight: no normal_ pass over a
        // 131M-entry table that a checkpoint is about to overwrite.
        var embedding = nn.Embedding(num, dim, dtype: dtype, device: new Device(TorchSharp.DeviceType.META));
        embedding.weight = new Parameter(empty(num, dim, dtype: dtype, device: device));
        return embedding;
    }
}
