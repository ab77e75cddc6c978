// A Hugging Face tokenizer.json whose model is BPE: the byte-level kind of GPT-2, Llama 3 and
// Qwen2/2.5/3 (Split regex + ByteLevel), and the SentencePiece-converted kind of Llama 2, Mistral,
// Gemma and Phi-3 (Prepend/Replace "▁" or Metaspace, byte_fallback). The pipeline follows
// huggingface/tokenizers tokenizer/mod.rs encode: added tokens are cut out first, each other piece
// is normalized, pre-tokenized into words, and each word is merged by BPE, which runs in
// Microsoft.ML.Tokenizers' BpeTokenizer. What ML.Tokenizers has no tokenizer.json reader for (the
// Split regex, Metaspace, added tokens, byte fallback, the post-processor, the decoder) is here.
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace ChainLora.Tokenization;

public sealed class TokenizerJsonTextTokenizer : ITextTokenizer
{
    /// <summary>Tokenizer classes whose transformers constructor rebuilds the post-processor from
    /// add_bos_token / add_eos_token (LlamaTokenizerFast.update_post_processor and its copies).</summary>
    static readonly HashSet<string> ClassesWithBosFlags =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"];

    /// <summary>The largest vocabularies are ~262k (Gemma 3); a larger id is a damaged file, not a model.</summary>
    const int MaxId = 1 << 24;

    /// <summary>End-of-sequence names of the families ChainLora loads, for a folder with no config naming one.</summary>
    static readonly string[] EosNames = ["</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"];

    readonly BpeTokenizer bpe;
    readonly Dictionary<string, int> vocab;
    readonly string?[] tokenOf; // id -> token (model vocabulary and added tokens)
    readonly AddedVocabulary added;
    readonly HashSet<int> specialIds;
    readonly TextNormalizer? normalizer;
    readonly TextPreTokenizer? preTokenizer;
    readonly TokenDecoder? decoder;
    readonly bool ignoreMerges, byteFallback, fuseUnk;
    readonly int? unkId;

    public int VocabSize => tokenOf.Length;
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }

    /// <summary>The ids Encode(text, addBos: true) puts before the text: the post-processor's (BOS for Llama 3, Mistral, Gemma; none for Qwen).</summary>
    public IReadOnlyList<int> SequenceStart { get; }

    /// <summary>Every added token (special or not), as tokenizer.json lists them.</summary>
    public IReadOnlyList<AddedToken> AddedTokens => added.Tokens;

    TokenizerJsonTextTokenizer(JsonElement root, string path, TokenizerConfig config, int? bosId, int? eosId, int? padId)
    {
        var model = JsonFields.Required(root, "model", "tokenizer.json");
        var type = JsonFields.OptionalString(model, "type", "model") ?? "BPE";
        if (type != "BPE")
            throw new InvalidDataException($"model.type is '{type}'; only BPE tokenizer.json files are supported");
        foreach (var field in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (JsonFields.OptionalString(model, field, "model") is { Length: > 0 } value)
                throw new InvalidDataException($"model.{field} = '{value}' is not supported");
        if (JsonFields.Optional(model, "dropout") is { } dropout && dropout.GetDouble() != 0)
            throw new InvalidDataException($"model.dropout = {dropout.GetRawText()}: BPE dropout changes encodings at random; only null or 0 is supported");

        vocab = JsonFields.Required(model, "vocab", "model").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var merges = JsonFields.Array(model, "merges", "model").Select(m => Merge(m.Item, m.Path)).ToList();
        ignoreMerges = JsonFields.Bool(model, "ignore_merges", "model", false);
        byteFallback = JsonFields.Bool(model, "byte_fallback", "model", false);
        fuseUnk = JsonFields.Bool(model, "fuse_unk", "model", false);
        if (JsonFields.OptionalString(model, "unk_token", "model") is { } unk)
            unkId = vocab.TryGetValue(unk, out var u) ? u : throw new InvalidDataException($"model.unk_token = '{unk}' is not in model.vocab");

        normalizer = TextNormalizer.Parse(JsonFields.Optional(root, "normalizer"), "normalizer");
        preTokenizer = TextPreTokenizer.Parse(JsonFields.Optional(root, "pre_tokenizer"), "pre_tokenizer");
        decoder = TokenDecoder.Parse(JsonFields.Optional(root, "decoder"), "decoder");
        var addedTokens = JsonFields.Optional(root, "added_tokens") is null ? []
            : JsonFields.Array(root, "added_tokens", "tokenizer.json").Select(t => ParseAdded(t.Item, t.Path)).ToList();
        added = new AddedVocabulary(addedTokens, text => normalizer?.Normalize(text, continuation: false) ?? text);
        specialIds = addedTokens.Where(t => t.Special).Select(t => t.Id).ToHashSet();

        foreach (var (token, id) in vocab.Select(kv => (kv.Key, kv.Value)).Concat(addedTokens.Select(t => (t.Content, t.Id))))
            if (id is < 0 or >= MaxId)
                throw new InvalidDataException($"token '{token}' has id {id}; ids run from 0 to {MaxId - 1}");
        tokenOf = new string?[Math.Max(vocab.Values.DefaultIfEmpty(-1).Max(), addedTokens.Select(t => t.Id).DefaultIfEmpty(-1).Max()) + 1];
        foreach (var (token, id) in vocab) tokenOf[id] = token;
        foreach (var token in addedTokens) tokenOf[token.Id] = token.Content;

        // Microsoft.ML.Tokenizers reads merges as "a b" lines, so a space inside a token (possible in
        // the [a, b] form) travels to it as a stand-in, in the vocabulary, the merges and the words alike.
        bpe = BpeTokenizer.Create(new BpeOptions(vocab.ToDictionary(kv => ForBpe(kv.Key), kv => kv.Value))
        {
            Merges = merges.Select(m => $"{ForBpe(m.Left)} {ForBpe(m.Right)}"),
        });

        var idOf = (string? token) => token is not null && TryGetId(token, out var id) ? id : (int?)null;
        var template = SpecialTokenTemplate.Parse(JsonFields.Optional(root, "post_processor"), "post_processor");
        if (config.TokenizerClass is { } cls && ClassesWithBosFlags.Contains(cls))
            template = new(config.AddBosToken ?? true ? [.. OptionalId(idOf(config.BosToken))] : [],
                config.AddEosToken ?? false ? [.. OptionalId(idOf(config.EosToken))] : []);
        SequenceStart = template.Prefix;

        EosId = TokenizerLoader.CheckId(eosId ?? idOf(config.EosToken) ?? EosNames.Select(idOf).FirstOrDefault(i => i is not null)
            ?? throw new InvalidDataException(
                $"'{path}': no end-of-sequence token: config.json has no eos_token_id, tokenizer_config.json no eos_token, " +
                $"and none of {string.Join(", ", EosNames)} is a token"),
            "eos_token_id", VocabSize, path);
        BosId = TokenizerLoader.CheckId(bosId ?? idOf(config.BosToken) ?? (template.Prefix.Count > 0 ? template.Prefix[0] : EosId), "bos_token_id", VocabSize, path);
        PadId = TokenizerLoader.CheckId(padId ?? idOf(config.PadToken) ?? EosId, "pad_token_id", VocabSize, path);
    }

    static IEnumerable<int> OptionalId(int? id) => id is { } i ? [i] : [];

    /// <summary>
    /// Loads <paramref name="path"/>. <paramref name="config"/> (tokenizer_config.json) supplies the
    /// special token names and, for Llama/Gemma tokenizer classes, whether BOS/EOS are added;
    /// config.json's ids, when given, win.
    /// </summary>
    public static TokenizerJsonTextTokenizer FromFile(string path, TokenizerConfig? config = null,
        int? bosId = null, int? eosId = null, int? padId = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file not found: '{path}'", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return new TokenizerJsonTextTokenizer(doc.RootElement, path, config ?? new TokenizerConfig(), bosId, eosId, padId);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException or ArgumentException
            or InvalidDataException && !e.Message.StartsWith($"'{path}'", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }

    static (string Left, string Right) Merge(JsonElement m, string path)
    {
        var (left, right) = m.ValueKind switch
        {
            JsonValueKind.Array when m.GetArrayLength() == 2 => (m[0].GetString()!, m[1].GetString()!),
            JsonValueKind.String when m.GetString()!.Split(' ') is [var l, var r] => (l, r),
            _ => throw new InvalidDataException($"{path} = {m.GetRawText()}: expected \"a b\" or [\"a\", \"b\"]"),
        };
        return (left, right);
    }

    static AddedToken ParseAdded(JsonElement t, string path) => new(
        JsonFields.Int(t, "id", path), JsonFields.String(t, "content", path), JsonFields.Bool(t, "special", path, false),
        JsonFields.Bool(t, "normalized", path, !JsonFields.Bool(t, "special", path, false)),
        JsonFields.Bool(t, "single_word", path, false), JsonFields.Bool(t, "lstrip", path, false), JsonFields.Bool(t, "rstrip", path, false));

    /// <summary>The id of a token (an added token, or one of the model vocabulary).</summary>
    public bool TryGetId(string token, out int id)
    {
        foreach (var t in added.Tokens)
            if (t.Content == token)
            {
                id = t.Id;
                return true;
            }
        return vocab.TryGetValue(token, out id);
    }

    /// <summary>HF <c>tokenizer(text)</c>: with <paramref name="addBos"/> the post-processor's leading special tokens come first.</summary>
    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = EncodeText(text, continuation: false);
        return addBos ? [.. SequenceStart, .. ids] : ids;
    }

    /// <summary>No prefix space or "▁" is added at the start (Prepend, Metaspace, ByteLevel add_prefix_space).</summary>
    public IReadOnlyList<int> EncodeContinuation(string text) => EncodeText(text, continuation: true);

    List<int> EncodeText(string text, bool continuation)
    {
        var ids = new List<int>();
        foreach (var piece in added.SplitRaw(new TextPiece(text, null, AtStart: true)))
        {
            if (piece.AddedId is { } id)
            {
                ids.Add(id);
                continue;
            }
            var noPrefix = continuation && piece.AtStart;
            var normalized = piece with { Text = normalizer?.Normalize(piece.Text, noPrefix) ?? piece.Text };
            if (normalized.Text.Length == 0) continue;
            foreach (var part in added.SplitNormalized(normalized))
            {
                if (part.AddedId is { } partId)
                {
                    ids.Add(partId);
                    continue;
                }
                var words = preTokenizer?.Split(part, noPrefix) ?? [part];
                foreach (var word in words) EncodeWord(word.Text, ids);
            }
        }
        return ids;
    }

    /// <summary>
    /// BPE of one word (models/bpe/model.rs tokenize): the word itself when ignore_merges and it
    /// is a token; characters missing from the vocabulary become "&lt;0xNN&gt;" byte tokens
    /// (byte_fallback) or unk, and cannot merge, so the runs between them are merged separately.
    /// </summary>
    void EncodeWord(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        if (ignoreMerges && vocab.TryGetValue(word, out var whole))
        {
            ids.Add(whole);
            return;
        }
        var (runStart, unkPending) = (0, false);
        for (var i = 0; i < word.Length;)
        {
            var width = char.IsSurrogatePair(word, i) ? 2 : 1;
            if (vocab.ContainsKey(word.Substring(i, width)))
            {
                if (unkPending) ids.Add(unkId!.Value);
                unkPending = false;
                i += width;
                continue;
            }
            if (runStart < i) ids.AddRange(Merged(word[runStart..i]));
            var bytes = byteFallback ? ByteTokens(word.Substring(i, width)) : null;
            i += width;
            runStart = i;
            if (bytes is not null || unkId is null)
            {
                if (unkPending) ids.Add(unkId!.Value);
                unkPending = false;
                ids.AddRange(bytes ?? []); // without byte fallback or unk_token, Hugging Face drops the character
            }
            else
            {
                if (unkPending && !fuseUnk) ids.Add(unkId.Value);
                unkPending = true;
            }
        }
        if (unkPending) ids.Add(unkId!.Value);
        if (runStart < word.Length) ids.AddRange(Merged(word[runStart..]));
    }

    /// <summary>U+FDD0, a noncharacter no vocabulary holds, in place of the space ML.Tokenizers' merges reader splits at.</summary>
    const char SpaceStandIn = '\uFDD0';

    static string ForBpe(string text) => text.Replace(' ', SpaceStandIn);

    /// <summary>The BPE merges of a run of vocabulary characters, in Microsoft.ML.Tokenizers.</summary>
    IReadOnlyList<int> Merged(string run) => bpe.EncodeToIds(ForBpe(run), considerPreTokenization: false, considerNormalization: false);

    List<int>? ByteTokens(string character)
    {
        var result = new List<int>();
        foreach (var b in Encoding.UTF8.GetBytes(character))
        {
            if (!vocab.TryGetValue($"<0x{b:X2}>", out var id)) return null;
            result.Add(id);
        }
        return result;
    }

    /// <summary>
    /// HF <c>decode(ids, skip_special_tokens=True)</c>: special added tokens and ids outside the
    /// vocabulary are dropped, the rest run through the decoder. transformers'
    /// clean_up_tokenization_spaces (a lossy display tweak, " ." to ".") is not applied.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var tokens = ids.Where(id => (uint)id < (uint)tokenOf.Length && tokenOf[id] is not null && !specialIds.Contains(id))
            .Select(id => tokenOf[id]!).ToList();
        return TokenDecoder.Decode(decoder, tokens);
    }
}
