using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>Keys and values (B, n_kv, S, hd) per layer for incremental decoding.</summary>
public sealed class KvCache(int layers) : IDisposable
{
    readonly Tensor?[] keys = new Tensor?[layers];
    readonly Tensor?[] values = new Tensor?[layers];

    /// <summary>Positions already cached (the "past" of the next forward).</summary>
    public long Length => keys[0]?.shape[2] ?? 0;

    /// <summary>Appends this step's k, v (B, n_kv, T, hd) and returns the full (B, n_kv, past+T, hd).</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        var oldK = keys[layer];
        var oldV = values[layer];
        var newK = oldK is null ? k.alias() : cat([oldK, k], 2);
        var newV = oldV is null ? v.alias() : cat([oldV, v], 2);
        // The cache outlives the caller's dispose scope; it owns its tensors until replaced.
        keys[layer] = newK.DetachFromDisposeScope();
        values[layer] = newV.DetachFromDisposeScope();
        oldK?.Dispose();
        oldV?.Dispose();
        return (newK, newV);
    }

    /// <summary>Keeps the cached rows <paramref name="index"/> (int64), in that order: rows may repeat.</summary>
    public void SelectRows(Tensor index)
    {
        for (var i = 0; i < keys.Length; i++)
        {
            if (keys[i] is not { } k || values[i] is not { } v) continue;
            keys[i] = k.index_select(0, index).DetachFromDisposeScope();
            values[i] = v.index_select(0, index).DetachFromDisposeScope();
            k.Dispose();
            v.Dispose();
        }
    }

    public void Dispose()
    {
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i]?.Dispose();
            values[i]?.Dispose();
            keys[i] = values[i] = null;
        }
    }
}
