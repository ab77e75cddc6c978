// Picks the tokenizer of a Hugging Face-style model directory from the files it holds, the way
// transformers' AutoTokenizer does: the fast tokenizer.json first, else the slow tokenizers'
// files (LlamaTokenizer's tokenizer.model, GPT2Tokenizer's vocab.json + merges.txt).
using System.Text.Json;
using ChainLora.IO;

namespace ChainLora.Tokenization;

public static class TokenizerLoader
{
    const string SentencePieceFile = "tokenizer.model";
    const string VocabFile = "vocab.json";
    const string MergesFile = "merges.txt";
    const string TokenizerJsonFile = "tokenizer.json";
    const string ConfigFile = "config.json";

    /// <summary>config.json model_type -> tokenizer kind, used only when a directory holds both kinds.</summary>
    static readonly Dictionary<string, Kind> KindByModelType = new(StringComparer.OrdinalIgnoreCase)
    {
        ["llama"] = Kind.SentencePiece,
        ["opt"] = Kind.Gpt2Bpe,
    };

    enum Kind { SentencePiece, Gpt2Bpe }

    /// <summary>
    /// The tokenizer in <paramref name="dir"/>. A <c>tokenizer.json</c> (Hugging Face's fast format,
    /// what AutoTokenizer loads first) is read with tokenizer_config.json beside it. Without one,
    /// <c>tokenizer.model</c> (or the one <c>*.model</c>) is SentencePiece and <c>vocab.json</c> +
    /// <c>merges.txt</c> GPT-2 byte-level BPE; when both are present config.json's model_type decides.
    /// bos/eos/pad_token_id from config.json, when present and not null, override the tokenizer
    /// files' own ids.
    /// </summary>
    public static ITextTokenizer FromDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Tokenizer directory not found: '{dir}'");
        var configPath = Path.Combine(dir, ConfigFile);
        var config = File.Exists(configPath) ? ReadConfig(configPath) : null;
        var tokenizerJson = Path.Combine(dir, TokenizerJsonFile);
        if (File.Exists(tokenizerJson))
            return TokenizerJsonTextTokenizer.FromFile(tokenizerJson, TokenizerConfig.Read(dir), config?.BosId, config?.EosId, config?.PadId);

        var sentencePiece = FindSentencePieceModel(dir);
        var vocab = Path.Combine(dir, VocabFile);
        var merges = Path.Combine(dir, MergesFile);
        var hasBpe = File.Exists(vocab) && File.Exists(merges);
        Kind kind;
        if (sentencePiece is not null && hasBpe)
        {
            if (config?.ModelType is not { } modelType || !KindByModelType.TryGetValue(modelType, out kind))
                throw new InvalidDataException(
                    $"'{dir}' holds both a SentencePiece model ({Path.GetFileName(sentencePiece)}) and {VocabFile} + {MergesFile}; " +
                    $"{ConfigFile} field 'model_type' must name one of: {string.Join(", ", KindByModelType.Keys)} " +
                    $"(found: {(config is null ? "no config.json" : config.ModelType ?? "no model_type")})");
        }
        else if (sentencePiece is not null) kind = Kind.SentencePiece;
        else if (hasBpe) kind = Kind.Gpt2Bpe;
        else
            throw new FileNotFoundException(
                $"No tokenizer in '{dir}': looked for {TokenizerJsonFile}, {SentencePieceFile} (or a single *.model " +
                $"SentencePiece file), or {VocabFile} + {MergesFile}");

        return kind == Kind.SentencePiece
            ? SentencePieceTextTokenizer.FromFile(sentencePiece!, config?.BosId, config?.EosId, config?.PadId)
            : Gpt2BpeTextTokenizer.FromFiles(vocab, merges, config?.BosId, config?.EosId, config?.PadId);
    }

    /// <summary><paramref name="id"/> when it indexes the vocabulary; otherwise an error naming the field and source.</summary>
    internal static int CheckId(int? id, string field, int vocabSize, string source) =>
        id is { } i && i >= 0 && i < vocabSize
            ? i
            : throw new InvalidDataException(
                $"'{source}': {field} = {id?.ToString() ?? "none"} is not a token id (vocabulary size {vocabSize})");

    static string? FindSentencePieceModel(string dir)
    {
        var preferred = Path.Combine(dir, SentencePieceFile);
        if (File.Exists(preferred)) return preferred;
        var models = Directory.GetFiles(dir, "*.model");
        return models.Length switch
        {
            0 => null,
            1 => models[0],
            _ => throw new InvalidDataException(
                $"'{dir}' holds several *.model files and no {SentencePieceFile}: " +
                string.Join(", ", models.Select(Path.GetFileName).Order())),
        };
    }

    sealed record ModelConfig(string? ModelType, int? BosId, int? EosId, int? PadId);

    static ModelConfig ReadConfig(string path)
    {
        using var doc = JsonFile.Parse(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object, found {root.ValueKind}");
        return new ModelConfig(
            root.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null,
            Id(root, "bos_token_id", path), Id(root, "eos_token_id", path), Id(root, "pad_token_id", path));
    }

    /// <summary>An int field; null when absent or null. A list (several EOS ids) gives its first.</summary>
    static int? Id(JsonElement root, string field, string path)
    {
        if (!root.TryGetProperty(field, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0) v = v[0];
        return v.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.Number when v.TryGetInt32(out var i) => i,
            _ => throw new InvalidDataException($"'{path}': field '{field}' = {v.GetRawText()}: expected an integer token id"),
        };
    }
}
