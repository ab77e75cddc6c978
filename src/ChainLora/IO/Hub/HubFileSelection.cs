// Which files of a model repository a model needs: transformers' from_pretrained reads config.json,
// the weights in one format (safetensors preferred, as use_safetensors does; a single file before an
// index) and the tokenizer files AutoTokenizer looks for. READMEs, other formats (ONNX, TF, Flax,
// GGUF) and the second weight format are never fetched.
namespace ChainLora.IO.Hub;

/// <summary>The files to fetch from a repo listing, and whether a snapshot on disk already has a whole model.</summary>
public static class HubFileSelection
{
    public const string ConfigFile = "config.json";
    public const string BinFile = "pytorch_model.bin";
    public const string BinIndexFile = "pytorch_model.bin.index.json";

    /// <summary>Taken when the repo has them; none is required (the tokenizer loader names what it misses).</summary>
    public static readonly IReadOnlyList<string> OptionalFiles =
    [
        "generation_config.json", "tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt",
        "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
    ];

    /// <summary>Weight layouts in order of preference: (single file, index file) per format.</summary>
    static readonly (string Single, string Index)[] WeightFormats =
    [
        (SafeTensors.SingleFileName, SafeTensors.IndexFileName),
        (BinFile, BinIndexFile),
    ];

    /// <summary>
    /// From the repo's file list: config.json, the optional files present, and the weights file
    /// (single file, or index whose shards are fetched after it is read: <see cref="Shards"/>).
    /// Errors name the repo and what it lacks.
    /// </summary>
    public static (IReadOnlyList<string> Files, string WeightsFile) Select(HubModelSpec spec, IReadOnlyCollection<string> repoFiles)
    {
        if (!repoFiles.Contains(ConfigFile))
            throw new FileNotFoundException($"{spec}: the repository has no {ConfigFile}, so it is not a transformers model");
        var weights = WeightFormats.SelectMany(f => new[] { f.Single, f.Index }).FirstOrDefault(repoFiles.Contains)
            ?? throw new FileNotFoundException($"{spec}: the repository has no weights ({string.Join(", ", WeightFormats.SelectMany(f => new[] { f.Single, f.Index }))}); " +
                $"it has {string.Join(", ", repoFiles.Order(StringComparer.Ordinal).Take(20))}");
        return ([ConfigFile, .. OptionalFiles.Where(repoFiles.Contains), weights], weights);
    }

    /// <summary>The shard files an index lists (empty for a single weights file), each once, in order.</summary>
    public static IReadOnlyList<string> Shards(string weightsPath) =>
        weightsPath.EndsWith(".index.json", StringComparison.Ordinal)
            ? SafeTensors.ReadWeightMap(weightsPath).Values.Distinct().Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>
    /// What a snapshot folder lacks to be loaded (config.json, or weights in either format with
    /// every shard its index lists), or null when it has a whole model. A dangling symlink counts as missing.
    /// </summary>
    public static string? Missing(string snapshot)
    {
        if (!HubCache.IsPresent(Path.Combine(snapshot, ConfigFile))) return ConfigFile;
        foreach (var (single, index) in WeightFormats)
        {
            if (HubCache.IsPresent(Path.Combine(snapshot, single))) return null;
            var indexPath = Path.Combine(snapshot, index);
            if (!HubCache.IsPresent(indexPath)) continue;
            var absent = Shards(indexPath).FirstOrDefault(s => !HubCache.IsPresent(Path.Combine(snapshot, s)));
            return absent is null ? null : $"{absent} (listed in {index})";
        }
        return $"weights ({SafeTensors.SingleFileName}, {BinFile} or an index)";
    }
}
