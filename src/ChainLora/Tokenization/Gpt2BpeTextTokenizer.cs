// GPT-2 byte-level BPE (vocab.json + merges.txt), as used by OPT; mirrors transformers'
// GPT2Tokenizer with OPT's special tokens, wrapping Microsoft.ML.Tokenizers' BpeTokenizer.
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace ChainLora.Tokenization;

public sealed partial class Gpt2BpeTextTokenizer : ITextTokenizer
{
    /// <summary>OPT's tokens that are never split or merged (HF added_tokens, special=true).</summary>
    static readonly string[] SpecialTokenNames = ["<s>", "<pad>", "</s>", "<unk>"];

    readonly BpeTokenizer inner;

    public int VocabSize => inner.Vocabulary.Count;
    /// <summary>OPT starts every sequence with &lt;/s&gt; (id 2), not &lt;s&gt;.</summary>
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }

    Gpt2BpeTextTokenizer(BpeTokenizer inner, string source, int? bosId, int? eosId, int? padId)
    {
        this.inner = inner;
        var vocab = inner.Vocabulary;
        BosId = TokenizerLoader.CheckId(bosId ?? vocab.GetValueOrDefault("</s>", 2), "bos_token_id", VocabSize, source);
        EosId = TokenizerLoader.CheckId(eosId ?? vocab.GetValueOrDefault("</s>", 2), "eos_token_id", VocabSize, source);
        PadId = TokenizerLoader.CheckId(padId ?? vocab.GetValueOrDefault("<pad>", 1), "pad_token_id", VocabSize, source);
    }

    /// <summary>
    /// Loads OPT/GPT-2 tokenizer files. BOS/EOS default to the id of "&lt;/s&gt;" and PAD to that of
    /// "&lt;pad&gt;" in vocab.json (2, 2, 1 if absent) unless given (config.json's ids win).
    /// </summary>
    public static Gpt2BpeTextTokenizer FromFiles(string vocabJsonPath, string mergesTxtPath,
        int? bosId = null, int? eosId = null, int? padId = null)
    {
        BpeTokenizer inner;
        try
        {
            inner = Create(new BpeOptions(vocabJsonPath, mergesTxtPath), []);
        }
        catch (Exception e) when (e is not FileNotFoundException)
        {
            throw new InvalidDataException(
                $"'{vocabJsonPath}' + '{mergesTxtPath}' are not readable GPT-2 BPE files: {e.Message}", e);
        }
        return new Gpt2BpeTextTokenizer(inner, vocabJsonPath, bosId, eosId, padId);
    }

    /// <summary>
    /// A Hugging Face <c>tokenizer.json</c> whose model is byte-level BPE (GPT-2, OPT, RoBERTa and
    /// their kin): model.vocab, model.merges ("a b" strings or [a, b] pairs) and added_tokens,
    /// whose special entries are never split.
    /// </summary>
    public static Gpt2BpeTextTokenizer FromTokenizerJson(string path, int? bosId = null, int? eosId = null, int? padId = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file not found: '{path}'", path);
        BpeTokenizer inner;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            var model = root.GetProperty("model");
            var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
            if (type != "BPE")
                throw new InvalidDataException($"model.type is '{type ?? "missing"}'; only byte-level BPE tokenizer.json files are supported");
            if (!Mentions(root.GetProperty("pre_tokenizer"), "ByteLevel"))
                throw new InvalidDataException("pre_tokenizer is not ByteLevel; only byte-level BPE tokenizer.json files are supported");
            var vocab = model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
            var added = root.TryGetProperty("added_tokens", out var a) && a.ValueKind == JsonValueKind.Array
                ? a.EnumerateArray().Select(e => (Content: e.GetProperty("content").GetString()!, Id: e.GetProperty("id").GetInt32(),
                    Special: e.TryGetProperty("special", out var sp) && sp.GetBoolean())).ToList()
                : [];
            foreach (var token in added) vocab[token.Content] = token.Id;
            var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.ValueKind == JsonValueKind.Array
                ? $"{m[0].GetString()} {m[1].GetString()}"
                : m.GetString()!).ToList();
            var options = new BpeOptions(vocab) { Merges = merges };
            inner = Create(options, added.Where(x => x.Special).Select(x => x.Content));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or InvalidDataException or ArgumentException)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
        return new Gpt2BpeTextTokenizer(inner, path, bosId, eosId, padId);
    }

    static bool Mentions(JsonElement element, string type) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().Any(p =>
            (p.Name == "type" && p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() == type) || Mentions(p.Value, type)),
        JsonValueKind.Array => element.EnumerateArray().Any(e => Mentions(e, type)),
        _ => false,
    };

    /// <summary>Byte-level BPE with GPT-2's pre-tokenizer; OPT's special names and <paramref name="extraSpecial"/> stay whole.</summary>
    static BpeTokenizer Create(BpeOptions options, IEnumerable<string> extraSpecial)
    {
        options.ByteLevel = true; // bytes -> printable code points (GPT-2 bytes_to_unicode), " " -> "Ġ"
        var names = SpecialTokenNames.Concat(extraSpecial).ToHashSet();
        var special = options.Vocabulary.Where(kv => names.Contains(kv.Key)).ToDictionary();
        options.SpecialTokens = special;
        options.PreTokenizer = new RegexPreTokenizer(Gpt2Split(), special);
        return BpeTokenizer.Create(options);
    }

    /// <summary>HF's OPT tokenizer prepends &lt;/s&gt; (add_bos_token=True); GPT-2 BPE adds no prefix space.</summary>
    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = inner.EncodeToIds(text);
        return addBos ? [BosId, .. ids] : ids;
    }

    /// <summary>Byte-level BPE has no dummy prefix, so a continuation is Encode without BOS.</summary>
    public IReadOnlyList<int> EncodeContinuation(string text) => inner.EncodeToIds(text);

    public string Decode(IEnumerable<int> ids) => inner.Decode(ids, considerSpecialTokens: false);

    /// <summary>GPT-2's pre-tokenizer pattern (openai/gpt-2 encoder.py), shared by OPT.</summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Gpt2Split();
}
