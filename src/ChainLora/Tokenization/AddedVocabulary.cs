// The added tokens of a tokenizer.json (special tokens such as <|eot_id|> and <|im_end|>, and
// plain added ones such as Qwen3's <think>): found in the text before anything else runs, so each
// is one id, never split. Mirrors huggingface/tokenizers tokenizer/added_vocabulary.rs: the
// leftmost-longest match wins, single_word / lstrip / rstrip as there, tokens with normalized=false
// matched on the raw text and the others on the normalized text.
using System.Text.RegularExpressions;

namespace ChainLora.Tokenization;

/// <summary>One entry of tokenizer.json's added_tokens.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool Normalized = false,
    bool SingleWord = false, bool Lstrip = false, bool Rstrip = false);

/// <summary>A piece of text: either an added token's id, or text still to tokenize.</summary>
readonly record struct TextPiece(string Text, int? AddedId, bool AtStart);

sealed partial class AddedVocabulary
{
    readonly Matcher raw;
    readonly Matcher normalized;

    public IReadOnlyList<AddedToken> Tokens { get; }

    /// <param name="normalize">The tokenizer's normalizer, applied to the contents of normalized tokens.</param>
    public AddedVocabulary(IReadOnlyList<AddedToken> tokens, Func<string, string> normalize)
    {
        Tokens = tokens;
        raw = new Matcher(tokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        normalized = new Matcher(tokens.Where(t => t.Normalized).Select(t => (normalize(t.Content), t)));
    }

    /// <summary>Splits <paramref name="piece"/> around the raw (normalized=false) tokens.</summary>
    public IEnumerable<TextPiece> SplitRaw(TextPiece piece) => raw.Split(piece);

    /// <summary>Splits an already normalized <paramref name="piece"/> around the normalized tokens.</summary>
    public IEnumerable<TextPiece> SplitNormalized(TextPiece piece) => normalized.Split(piece);

    sealed class Matcher
    {
        /// <summary>Candidates by first character, longest first.</summary>
        readonly Dictionary<char, (string Pattern, AddedToken Token)[]> byFirst;

        public Matcher(IEnumerable<(string Pattern, AddedToken Token)> entries) =>
            byFirst = entries.Where(e => e.Pattern.Length > 0)
                .GroupBy(e => e.Pattern[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(e => e.Pattern.Length).ToArray());

        public IEnumerable<TextPiece> Split(TextPiece piece)
        {
            var text = piece.Text;
            if (byFirst.Count == 0 || text.Length == 0)
            {
                yield return piece;
                yield break;
            }
            var emitted = 0; // end of the last piece given out
            var i = 0;       // where the search resumes
            while (i < text.Length)
            {
                if (!Longest(text, i, out var match))
                {
                    i++;
                    continue;
                }
                var (start, stop) = (i, i + match.Pattern.Length);
                i = stop;
                var token = match.Token;
                if (token.SingleWord && (start > 0 && WordEnd().IsMatch(text[..start]) || stop < text.Length && WordStart().IsMatch(text[stop..])))
                    continue;
                if (token.Lstrip)
                    start = Math.Max(emitted, text.AsSpan(0, start).TrimEnd().Length);
                if (token.Rstrip)
                    stop += text.Length - stop - text.AsSpan(stop).TrimStart().Length;
                if (emitted < start) yield return new(text[emitted..start], null, piece.AtStart && emitted == 0);
                yield return new(text[start..stop], token.Id, false);
                emitted = i = stop;
            }
            if (emitted < text.Length) yield return new(text[emitted..], null, piece.AtStart && emitted == 0);
        }

        bool Longest(string text, int at, out (string Pattern, AddedToken Token) match)
        {
            match = default;
            if (!byFirst.TryGetValue(text[at], out var candidates)) return false;
            foreach (var candidate in candidates)
                if (text.AsSpan(at).StartsWith(candidate.Pattern, StringComparison.Ordinal))
                {
                    match = candidate;
                    return true;
                }
            return false;
        }
    }

    [GeneratedRegex(@"\w$")]
    private static partial Regex WordEnd();

    [GeneratedRegex(@"^\w")]
    private static partial Regex WordStart();
}
