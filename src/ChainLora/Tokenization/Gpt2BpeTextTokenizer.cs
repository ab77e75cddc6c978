// GPT-2 byte-level BPE (vocab.json + merges.txt), as used by OPT; mirrors transformers'
// GPT2Tokenizer with OPT's special tokens, wrapping Microsoft.ML.Tokenizers' BpeTokenizer.
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
            inner = Create(new BpeOptions(vocabJsonPath, mergesTxtPath));
        }
        catch (Exception e) when (e is not FileNotFoundException)
        {
            throw new InvalidDataException(
                $"'{vocabJsonPath}' + '{mergesTxtPath}' are not readable GPT-2 BPE files: {e.Message}", e);
        }
        return new Gpt2BpeTextTokenizer(inner, vocabJsonPath, bosId, eosId, padId);
    }

    /// <summary>Byte-level BPE with GPT-2's pre-tokenizer; OPT's special names stay whole.</summary>
    static BpeTokenizer Create(BpeOptions options)
    {
        options.ByteLevel = true; // bytes -> printable code points (GPT-2 bytes_to_unicode), " " -> "Ġ"
        var names = SpecialTokenNames.ToHashSet();
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
