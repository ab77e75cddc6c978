namespace ChainLora.Tokenization;

/// <summary>
/// The tokenizer surface the rest of ChainLora uses: ids in, ids out, no special tokens added
/// implicitly except BOS when asked. Implementations wrap Microsoft.ML.Tokenizers (tokenizer.json's
/// BPE merges run in its BpeTokenizer).
/// </summary>
public interface ITextTokenizer
{
    int VocabSize { get; }
    int BosId { get; }
    int EosId { get; }
    /// <summary>Id used for left padding (OPT: 1; Llama has none, so its EOS or 0 is used).</summary>
    int PadId { get; }

    /// <summary>
    /// Token ids of <paramref name="text"/>, with BOS first when <paramref name="addBos"/> (what the
    /// tokenizer puts at a sequence's start: nothing for a tokenizer.json whose post-processor adds
    /// none, such as Qwen's). Text encoded on its own starts a new sequence (SentencePiece adds its
    /// dummy prefix space). Added tokens written in the text (&lt;|eot_id|&gt;) are one id each.
    /// </summary>
    IReadOnlyList<int> Encode(string text, bool addBos);

    /// <summary>
    /// Token ids of <paramref name="text"/> as a continuation of earlier text (no BOS, and no
    /// SentencePiece dummy prefix), so that Encode(a) ++ EncodeContinuation(b) tokenizes a + b
    /// the way the model saw such text in training, up to the merge at the boundary.
    /// </summary>
    IReadOnlyList<int> EncodeContinuation(string text);

    /// <summary>Text of <paramref name="ids"/>; special tokens are dropped.</summary>
    string Decode(IEnumerable<int> ids);
}
