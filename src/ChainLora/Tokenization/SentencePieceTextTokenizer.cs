// Llama-family SentencePiece BPE tokenizer (tokenizer.model), wrapping Microsoft.ML.Tokenizers'
// LlamaTokenizer. Pinned against karpathy/llama2.c run.c encode/decode (scripts/llama2c_encode.py).
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace ChainLora.Tokenization;

public sealed partial class SentencePieceTextTokenizer : ITextTokenizer
{
    /// <summary>SentencePiece's escaped space, U+2581.</summary>
    const char SpaceSymbol = '\u2581';

    readonly SentencePieceTokenizer inner;
    readonly string[] pieces; // id -> piece, to see which piece opens with the escaped space
    readonly bool removeExtraWhiteSpaces;

    public int VocabSize => pieces.Length;
    public int BosId { get; }
    public int EosId { get; }
    /// <summary>0, the &lt;unk&gt; id: Llama has no pad token, and padded positions are never attended.</summary>
    public int PadId { get; }

    SentencePieceTextTokenizer(SentencePieceTokenizer inner, string source, int? bosId, int? eosId, int? padId)
    {
        this.inner = inner;
        pieces = new string[inner.Vocabulary.Count];
        foreach (var (piece, id) in inner.Vocabulary) pieces[id] = piece;
        // EncodeContinuation escapes spaces itself; it relies on the Llama conventions.
        if (!inner.EscapeWhiteSpaces || inner.TreatWhitespaceAsSuffix)
            throw new InvalidDataException(
                $"'{source}': only SentencePiece models that escape spaces as a '\u2581' prefix are supported " +
                $"(escape_whitespaces={inner.EscapeWhiteSpaces}, treat_whitespace_as_suffix={inner.TreatWhitespaceAsSuffix})");
        removeExtraWhiteSpaces = inner.Normalizer is SentencePieceNormalizer { RemoveExtraWhiteSpaces: true };
        BosId = TokenizerLoader.CheckId(bosId ?? inner.BeginningOfSentenceId, "bos_token_id", VocabSize, source);
        EosId = TokenizerLoader.CheckId(eosId ?? inner.EndOfSentenceId, "eos_token_id", VocabSize, source);
        PadId = TokenizerLoader.CheckId(padId ?? inner.UnknownId, "pad_token_id", VocabSize, source);
    }

    /// <summary>
    /// Loads a SentencePiece BPE <c>tokenizer.model</c>. BOS/EOS come from the model unless given
    /// (config.json's ids win, see <see cref="TokenizerLoader"/>); PAD defaults to the unk id 0.
    /// </summary>
    public static SentencePieceTextTokenizer FromFile(string modelPath, int? bosId = null, int? eosId = null, int? padId = null)
    {
        using var stream = File.OpenRead(modelPath);
        SentencePieceTokenizer inner;
        try
        {
            // BOS is added here, not by the library: it drops BOS for empty text and would ignore an overridden id.
            inner = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e)
        {
            throw new InvalidDataException($"'{modelPath}' is not a readable SentencePiece BPE model: {e.Message}", e);
        }
        return new SentencePieceTextTokenizer(inner, modelPath, bosId, eosId, padId);
    }

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
        return addBos ? [BosId, .. ids] : ids;
    }

    /// <summary>
    /// The library's normalizer always adds the dummy prefix and strips leading spaces, so the
    /// continuation is normalized here instead: spaces escaped as '▁', no dummy prefix, and (when
    /// the model removes extra whitespace) runs of spaces collapsed to one while a leading space,
    /// interior to the whole text, is kept; trailing spaces end the whole text and are dropped.
    /// " great" gives "▁great", "great" gives "great".
    /// </summary>
    public IReadOnlyList<int> EncodeContinuation(string text)
    {
        if (removeExtraWhiteSpaces) text = SpaceRun().Replace(text, " ").TrimEnd(' ');
        return inner.EncodeToIds(text.Replace(' ', SpaceSymbol), addBeginningOfSentence: false, addEndOfSentence: false,
            considerPreTokenization: false, considerNormalization: false);
    }

    /// <summary>
    /// Special tokens and unk are dropped; "&lt;0xNN&gt;" byte pieces become UTF-8 bytes. As in
    /// llama2.c, the leading space of the first piece is removed only right after BOS, so decoding a
    /// continuation keeps it. The library strips one leading '▁' of the first piece whatever
    /// precedes it, which is undone here.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var list = ids as IReadOnlyList<int> ?? ids.ToList();
        var text = inner.Decode(list, considerSpecialTokens: false);
        var first = FirstContentIndex(list);
        var keepSpace = first >= 0 && pieces[list[first]].StartsWith(SpaceSymbol) && (first == 0 || list[first - 1] != BosId);
        return keepSpace ? " " + text : text;
    }

    /// <summary>Index of the first id the library decodes to text (it drops BOS, EOS, unk and ids
    /// outside the vocabulary), or -1.</summary>
    int FirstContentIndex(IReadOnlyList<int> ids)
    {
        for (var i = 0; i < ids.Count; i++)
        {
            var id = ids[i];
            if ((uint)id < (uint)pieces.Length && id != inner.BeginningOfSentenceId && id != inner.EndOfSentenceId && id != inner.UnknownId)
                return i;
        }
        return -1;
    }

    [GeneratedRegex(" {2,}")]
    private static partial Regex SpaceRun();
}
