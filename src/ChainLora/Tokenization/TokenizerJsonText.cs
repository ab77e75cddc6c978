// The text stages of a tokenizer.json before the model: normalizers and pre-tokenizers, with
// huggingface/tokenizers' semantics (normalizers/*.rs, pre_tokenizers/*.rs, tokenizer/pattern.rs,
// NormalizedString::split). Each component the file names is either implemented here or refused by
// name, so a tokenizer never silently encodes differently from transformers.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ChainLora.Tokenization;

/// <summary>
/// A Split or Replace pattern: a literal string or a regex. Hugging Face runs regexes with
/// Oniguruma over code points; .NET's engine sees UTF-16 units, so a letter or digit outside the
/// BMP (CJK Extension B, mathematical letters) would not match \p{L}. When the pattern is plain
/// ASCII (as the GPT-2, Llama 3 and Qwen patterns are) such characters are matched through a BMP
/// stand-in of the same Unicode category, which gives the code-point answer.
/// </summary>
sealed class TextPattern
{
    readonly Regex regex;
    readonly bool standIns;

    TextPattern(Regex regex, bool standIns) => (this.regex, this.standIns) = (regex, standIns);

    public static TextPattern Parse(JsonElement e, string path)
    {
        var pattern = JsonFields.Required(e, "pattern", path);
        if (JsonFields.OptionalString(pattern, "String", path + ".pattern") is { } literal)
            return new(new Regex(Regex.Escape(literal), RegexOptions.CultureInvariant), false);
        var source = JsonFields.String(pattern, "Regex", path + ".pattern");
        try
        {
            return new(new Regex(source, RegexOptions.CultureInvariant | RegexOptions.Compiled), source.All(char.IsAscii));
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{path}.pattern.Regex = '{source}' is not a regex .NET accepts: {ex.Message}", ex);
        }
    }

    /// <summary>(start, end, is a match) covering <paramref name="text"/> in order, as pattern.rs find_matches.</summary>
    public List<(int Start, int End, bool IsMatch)> Find(string text)
    {
        var (searched, map) = standIns && text.Any(char.IsSurrogate) ? WithStandIns(text) : (text, null);
        var splits = new List<(int, int, bool)>();
        var prev = 0;
        for (var m = regex.Match(searched); m.Success; m = m.NextMatch())
        {
            var (start, end) = map is null ? (m.Index, m.Index + m.Length) : (map[m.Index], map[m.Index + m.Length]);
            if (prev != start) splits.Add((prev, start, false));
            splits.Add((start, end, true));
            prev = end;
        }
        if (prev != text.Length) splits.Add((prev, text.Length, false));
        return splits;
    }

    public string Replace(string text, string content)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var (start, end, isMatch) in Find(text)) sb.Append(isMatch ? content : text.AsSpan(start, end - start));
        return sb.ToString();
    }

    /// <summary>One char per code point; map[i] is where stand-in i starts in <paramref name="text"/>.</summary>
    static (string, int[]) WithStandIns(string text)
    {
        var sb = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (var i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            map.Add(i);
            sb.Append(char.IsSurrogatePair(text, i) ? StandIn[(int)CharUnicodeInfo.GetUnicodeCategory(text, i)] : text[i]);
        }
        map.Add(text.Length);
        return (sb.ToString(), map.ToArray());
    }

    /// <summary>For each Unicode category, the first non-ASCII BMP character in it.</summary>
    static readonly char[] StandIn = BuildStandIns();

    static char[] BuildStandIns()
    {
        var table = new char[Enum.GetValues<UnicodeCategory>().Length];
        for (var c = (char)0xFFFF; c >= 0x80; c--)
            if (!char.IsSurrogate(c)) table[(int)char.GetUnicodeCategory(c)] = c;
        return table;
    }
}

/// <summary>A tokenizer.json normalizer (NFC, Prepend, Replace, ... or a Sequence of them).</summary>
abstract class TextNormalizer
{
    /// <param name="continuation">True when the text continues earlier text: Prepend adds nothing.</param>
    public abstract string Normalize(string text, bool continuation);

    public static TextNormalizer? Parse(JsonElement? e, string path) => e is { } element ? Parse(element, path) : null;

    static TextNormalizer Parse(JsonElement e, string path) =>
        JsonFields.Type(e, path, "Sequence", "NFC", "NFD", "Lowercase", "Prepend", "Replace", "Strip") switch
        {
            "Sequence" => new Chain(JsonFields.Array(e, "normalizers", path).Select(n => Parse(n.Item, n.Path)).ToList()),
            "NFC" => new Unicode(UnicodeNormalization.Nfc),
            "NFD" => new Unicode(UnicodeNormalization.Nfd),
            "Lowercase" => new Lowercase(),
            "Prepend" => new Prepend(JsonFields.String(e, "prepend", path)),
            "Replace" => new Replace(TextPattern.Parse(e, path), JsonFields.String(e, "content", path)),
            _ => new Strip(JsonFields.Bool(e, "strip_left", path, true), JsonFields.Bool(e, "strip_right", path, true)),
        };

    sealed class Chain(IReadOnlyList<TextNormalizer> steps) : TextNormalizer
    {
        public override string Normalize(string text, bool continuation) =>
            steps.Aggregate(text, (t, step) => step.Normalize(t, continuation));
    }

    sealed class Unicode(Func<string, string> form) : TextNormalizer
    {
        public override string Normalize(string text, bool continuation) => form(text);
    }

    sealed class Lowercase : TextNormalizer
    {
        public override string Normalize(string text, bool continuation) => text.ToLowerInvariant();
    }

    /// <summary>Llama 2's legacy "▁" dummy prefix, added to every non-empty piece.</summary>
    sealed class Prepend(string prefix) : TextNormalizer
    {
        public override string Normalize(string text, bool continuation) =>
            continuation || text.Length == 0 ? text : prefix + text;
    }

    sealed class Replace(TextPattern pattern, string content) : TextNormalizer
    {
        public override string Normalize(string text, bool continuation) => pattern.Replace(text, content);
    }

    sealed class Strip(bool left, bool right) : TextNormalizer
    {
        public override string Normalize(string text, bool continuation) =>
            left && right ? text.Trim() : left ? text.TrimStart() : right ? text.TrimEnd() : text;
    }
}

/// <summary>A tokenizer.json pre-tokenizer: splits a piece of text into the words BPE runs on.</summary>
abstract class TextPreTokenizer
{
    enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    /// <param name="continuation">True when the text continues earlier text: no prefix space is added.</param>
    public abstract IEnumerable<TextPiece> Split(TextPiece piece, bool continuation);

    /// <summary>True when the words are in GPT-2's byte alphabet afterwards.</summary>
    public virtual bool IsByteLevel => false;

    public static TextPreTokenizer? Parse(JsonElement? e, string path) => e is { } element ? Parse(element, path) : null;

    static TextPreTokenizer Parse(JsonElement e, string path)
    {
        switch (JsonFields.Type(e, path, "Sequence", "Split", "ByteLevel", "Metaspace", "Digits"))
        {
            case "Sequence":
                return new Chain(JsonFields.Array(e, "pretokenizers", path).Select(p => Parse(p.Item, p.Path)).ToList());
            case "Split":
                var behavior = JsonFields.String(e, "behavior", path);
                return new RegexSplit(TextPattern.Parse(e, path),
                    Enum.TryParse<Behavior>(behavior, out var b) && Enum.IsDefined(b) ? b
                        : throw new InvalidDataException($"{path}.behavior = '{behavior}' is not one of {string.Join(", ", Enum.GetNames<Behavior>())}"),
                    JsonFields.Bool(e, "invert", path, false));
            case "ByteLevel":
                return new ByteLevel(JsonFields.Bool(e, "add_prefix_space", path, true), JsonFields.Bool(e, "use_regex", path, true));
            case "Metaspace":
                var replacement = JsonFields.String(e, "replacement", path);
                if (replacement.Length != 1) throw new InvalidDataException($"{path}.replacement = '{replacement}': expected one character");
                return new Metaspace(replacement[0], MetaspacePrepend(e, path), JsonFields.Bool(e, "split", path, true));
            default:
                return new Digits(JsonFields.Bool(e, "individual_digits", path, false));
        }
    }

    /// <summary>prepend_scheme "always" / "first" / "never", or the older add_prefix_space flag.</summary>
    internal static string MetaspacePrepend(JsonElement e, string path) =>
        JsonFields.OptionalString(e, "prepend_scheme", path) switch
        {
            null => JsonFields.Bool(e, "add_prefix_space", path, true) ? "always" : "never",
            var s when s is "always" or "first" or "never" => s,
            var s => throw new InvalidDataException($"{path}.prepend_scheme = '{s}' is not one of always, first, never"),
        };

    static IEnumerable<TextPiece> Slices(TextPiece piece, IEnumerable<(int Start, int End)> spans) =>
        spans.Where(s => s.End > s.Start)
            .Select(s => new TextPiece(piece.Text[s.Start..s.End], null, piece.AtStart && s.Start == 0));

    /// <summary>NormalizedString::split: how the matches of a pattern cut a piece.</summary>
    static IEnumerable<TextPiece> SplitBy(TextPiece piece, List<(int Start, int End, bool IsMatch)> matches, Behavior behavior)
    {
        var spans = new List<(int Start, int End)>();
        var previousMatch = false;
        switch (behavior)
        {
            case Behavior.Isolated:
                spans.AddRange(matches.Select(m => (m.Start, m.End)));
                break;
            case Behavior.Removed:
                spans.AddRange(matches.Where(m => !m.IsMatch).Select(m => (m.Start, m.End)));
                break;
            case Behavior.Contiguous:
                foreach (var m in matches)
                {
                    if (m.IsMatch == previousMatch && spans.Count > 0) spans[^1] = (spans[^1].Start, m.End);
                    else spans.Add((m.Start, m.End));
                    previousMatch = m.IsMatch;
                }
                break;
            case Behavior.MergedWithPrevious:
                foreach (var m in matches)
                {
                    if (m.IsMatch && !previousMatch && spans.Count > 0) spans[^1] = (spans[^1].Start, m.End);
                    else spans.Add((m.Start, m.End));
                    previousMatch = m.IsMatch;
                }
                break;
            case Behavior.MergedWithNext:
                for (var i = matches.Count - 1; i >= 0; i--)
                {
                    var m = matches[i];
                    if (m.IsMatch && !previousMatch && spans.Count > 0) spans[^1] = (m.Start, spans[^1].End);
                    else spans.Add((m.Start, m.End));
                    previousMatch = m.IsMatch;
                }
                spans.Reverse();
                break;
        }
        return Slices(piece, spans);
    }

    sealed class Chain(IReadOnlyList<TextPreTokenizer> steps) : TextPreTokenizer
    {
        public override bool IsByteLevel => steps.Any(s => s.IsByteLevel);

        public override IEnumerable<TextPiece> Split(TextPiece piece, bool continuation) =>
            steps.Aggregate((IEnumerable<TextPiece>)[piece], (pieces, step) => pieces.SelectMany(p => step.Split(p, continuation)).ToList());
    }

    sealed class RegexSplit(TextPattern pattern, Behavior behavior, bool invert) : TextPreTokenizer
    {
        public override IEnumerable<TextPiece> Split(TextPiece piece, bool continuation)
        {
            var matches = pattern.Find(piece.Text);
            if (invert) matches = matches.Select(m => (m.Start, m.End, !m.IsMatch)).ToList();
            return SplitBy(piece, matches, behavior);
        }
    }

    /// <summary>GPT-2's pre-tokenizer: optional prefix space and GPT-2 regex, then bytes to symbols.</summary>
    sealed partial class ByteLevel(bool addPrefixSpace, bool useRegex) : TextPreTokenizer
    {
        public override bool IsByteLevel => true;

        public override IEnumerable<TextPiece> Split(TextPiece piece, bool continuation)
        {
            if (addPrefixSpace && !continuation && !piece.Text.StartsWith(' ')) piece = piece with { Text = " " + piece.Text };
            var words = useRegex ? SplitBy(piece, Gpt2Words.Find(piece.Text), Behavior.Isolated) : Slices(piece, [(0, piece.Text.Length)]);
            return words.Select(w => w with { Text = ByteLevelAlphabet.Encode(w.Text) });
        }

        static readonly TextPattern Gpt2Words = TextPattern.Parse(JsonDocument.Parse(
            """{"pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"}}""").RootElement, "ByteLevel");
    }

    /// <summary>SentencePiece's spaces: ' ' becomes the replacement, which opens the text per prepend_scheme.</summary>
    sealed class Metaspace(char replacement, string prepend, bool split) : TextPreTokenizer
    {
        public override IEnumerable<TextPiece> Split(TextPiece piece, bool continuation)
        {
            var text = piece.Text.Replace(' ', replacement);
            var prefix = !continuation && text.Length > 0 && text[0] != replacement
                && (prepend == "always" || prepend == "first" && piece.AtStart);
            piece = piece with { Text = prefix ? replacement + text : text };
            if (!split) return Slices(piece, [(0, piece.Text.Length)]);
            var matches = new List<(int, int, bool)>();
            for (var i = 0; i < piece.Text.Length; i++)
            {
                var isMatch = piece.Text[i] == replacement;
                if (isMatch || matches.Count == 0 || matches[^1].Item3) matches.Add((i, i + 1, isMatch));
                else matches[^1] = (matches[^1].Item1, i + 1, false);
            }
            return SplitBy(piece, matches, Behavior.MergedWithNext);
        }
    }

    sealed class Digits(bool individual) : TextPreTokenizer
    {
        public override IEnumerable<TextPiece> Split(TextPiece piece, bool continuation)
        {
            var matches = new List<(int, int, bool)>();
            for (var i = 0; i < piece.Text.Length; i += char.IsSurrogatePair(piece.Text, i) ? 2 : 1)
            {
                var end = i + (char.IsSurrogatePair(piece.Text, i) ? 2 : 1);
                var isMatch = char.IsNumber(piece.Text, i);
                if (isMatch || matches.Count == 0 || matches[^1].Item3) matches.Add((i, end, isMatch));
                else matches[^1] = (matches[^1].Item1, end, false);
            }
            return SplitBy(piece, matches, individual ? Behavior.Isolated : Behavior.Contiguous);
        }
    }
}
