// transformers' sharded checkpoints: an index (model.safetensors.index.json or
// pytorch_model.bin.index.json) whose weight_map names the shard of every tensor.
namespace ChainLora.IO;

public sealed class ShardedTensorSource : ITensorSource
{
    readonly Dictionary<string, ITensorSource> shardOf;
    readonly List<ITensorSource> shards;

    ShardedTensorSource(string indexPath, Dictionary<string, ITensorSource> shardOf, List<ITensorSource> shards)
    {
        (Source, this.shardOf, this.shards) = (indexPath, shardOf, shards);
        Tensors = shardOf.ToDictionary(kv => kv.Key, kv => kv.Value.Tensors[kv.Key], StringComparer.Ordinal);
    }

    public string Source { get; }
    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    /// <summary>
    /// Opens every shard the index lists with <paramref name="openShard"/> and checks that the
    /// weight_map and the shards' contents agree before any tensor data is read.
    /// </summary>
    public static ShardedTensorSource Open(string indexPath, Func<string, ITensorSource> openShard)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var weightMap = SafeTensors.ReadWeightMap(indexPath);
        var names = weightMap.Values.Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (var name in names)
            if (!File.Exists(Path.Combine(dir, name)))
                throw new FileNotFoundException($"{indexPath}: shard '{name}' listed in weight_map does not exist", Path.Combine(dir, name));
        var opened = new Dictionary<string, ITensorSource>(StringComparer.Ordinal);
        try
        {
            foreach (var name in names) opened[name] = openShard(Path.Combine(dir, name));
            var missing = weightMap.Where(kv => !opened[kv.Value].Tensors.ContainsKey(kv.Key))
                .Select(kv => $"'{kv.Key}' (mapped to {kv.Value})").ToList();
            var unexpected = opened.SelectMany(s => s.Value.Tensors.Keys
                .Where(n => !weightMap.TryGetValue(n, out var shard) || shard != s.Key)
                .Select(n => $"'{n}' (in {s.Key})")).ToList();
            if (missing.Count + unexpected.Count > 0)
                throw new InvalidDataException($"{indexPath}: weight_map does not match the shards; " +
                    $"missing {missing.Count}: {Sample(missing)}; unexpected {unexpected.Count}: {Sample(unexpected)}");
            return new ShardedTensorSource(indexPath,
                weightMap.ToDictionary(kv => kv.Key, kv => opened[kv.Value], StringComparer.Ordinal), [.. opened.Values]);
        }
        catch
        {
            foreach (var shard in opened.Values) shard.Dispose();
            throw;
        }
    }

    public void CopyTo(string name, TorchSharp.torch.Tensor destination)
    {
        if (!shardOf.TryGetValue(name, out var shard)) throw new KeyNotFoundException($"{Source}: no tensor '{name}' in weight_map");
        shard.CopyTo(name, destination);
    }

    static string Sample(List<string> names) =>
        names.Count == 0 ? "none" : string.Join(", ", names.Take(10)) + (names.Count > 10 ? ", ..." : "");

    public void Dispose()
    {
        foreach (var shard in shards) shard.Dispose();
    }
}
