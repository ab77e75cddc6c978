// The stages of a tokenizer.json after the model: the post-processor (which special tokens wrap a
// sequence) and the decoder (tokens back to text), with huggingface/tokenizers' semantics
// (processors/template.rs, decoders/*.rs). Unknown components are refused by name.
using System.Text;
using System.Text.Json;

namespace ChainLora.Tokenization;

/// <summary>
/// The special tokens the post-processor puts around a single sequence (HF
/// <c>add_special_tokens=True</c>): Llama 3's TemplateProcessing gives Prefix [&lt;|begin_of_text|&gt;],
/// Qwen's ByteLevel processor gives nothing.
/// </summary>
sealed record SpecialTokenTemplate(IReadOnlyList<int> Prefix, IReadOnlyList<int> Suffix)
{
    public static readonly SpecialTokenTemplate None = new([], []);

    public static SpecialTokenTemplate Parse(JsonElement? e, string path)
    {
        if (e is not { } element) return None;
        switch (JsonFields.Type(element, path, "TemplateProcessing", "ByteLevel", "Sequence"))
        {
            case "ByteLevel":
                return None; // only trims offsets
            case "Sequence":
                // Each processor wraps what the previous one produced.
                return JsonFields.Array(element, "processors", path).Select(p => Parse(p.Item, p.Path))
                    .Aggregate(None, (inner, outer) => new([.. outer.Prefix, .. inner.Prefix], [.. inner.Suffix, .. outer.Suffix]));
            default:
                var specials = JsonFields.Required(element, "special_tokens", path);
                var (prefix, suffix, seenSequence) = (new List<int>(), new List<int>(), false);
                foreach (var (item, itemPath) in JsonFields.Array(element, "single", path))
                {
                    if (JsonFields.Optional(item, "Sequence") is not null)
                    {
                        seenSequence = true;
                        continue;
                    }
                    var name = JsonFields.String(JsonFields.Required(item, "SpecialToken", itemPath), "id", itemPath + ".SpecialToken");
                    var ids = JsonFields.Array(JsonFields.Required(specials, name, path + ".special_tokens"), "ids", $"{path}.special_tokens.{name}")
                        .Select(i => i.Item.TryGetInt32(out var id) ? id : throw new InvalidDataException($"{i.Path} = {i.Item.GetRawText()}: expected an integer"));
                    (seenSequence ? suffix : prefix).AddRange(ids);
                }
                return new(prefix, suffix);
        }
    }
}

/// <summary>A tokenizer.json decoder: token strings to text.</summary>
abstract class TokenDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    /// <summary>Without a decoder Hugging Face joins the tokens with spaces.</summary>
    public static string Decode(TokenDecoder? decoder, List<string> tokens) =>
        decoder is null ? string.Join(' ', tokens) : string.Concat(decoder.DecodeChain(tokens));

    public static TokenDecoder? Parse(JsonElement? e, string path) => e is { } element ? Parse(element, path) : null;

    static TokenDecoder Parse(JsonElement e, string path) =>
        JsonFields.Type(e, path, "Sequence", "ByteLevel", "Metaspace", "Replace", "ByteFallback", "Fuse", "Strip") switch
        {
            "Sequence" => new Chain(JsonFields.Array(e, "decoders", path).Select(d => Parse(d.Item, d.Path)).ToList()),
            "ByteLevel" => new ByteLevel(),
            "Metaspace" => new Metaspace(JsonFields.String(e, "replacement", path), TextPreTokenizer.MetaspacePrepend(e, path) != "never"),
            "Replace" => new Replace(TextPattern.Parse(e, path), JsonFields.String(e, "content", path)),
            "ByteFallback" => new ByteFallback(),
            "Fuse" => new Fuse(),
            _ => new Strip(JsonFields.String(e, "content", path) is [var c] ? c
                    : throw new InvalidDataException($"{path}.content = '{JsonFields.String(e, "content", path)}': expected one character"),
                JsonFields.Int(e, "start", path), JsonFields.Int(e, "stop", path)),
        };

    sealed class Chain(IReadOnlyList<TokenDecoder> steps) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => steps.Aggregate(tokens, (t, step) => step.DecodeChain(t));
    }

    sealed class ByteLevel : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var token in tokens) ByteLevelAlphabet.AppendBytes(token, bytes);
            return [Encoding.UTF8.GetString(bytes.ToArray())];
        }
    }

    /// <summary>The replacement becomes a space; in the first token (the prefix it added) it is dropped.</summary>
    sealed class Metaspace(string replacement, bool prepends) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) =>
            tokens.Select((t, i) => t.Replace(replacement, i == 0 && prepends ? "" : " ")).ToList();
    }

    sealed class Replace(TextPattern pattern, string content) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t => pattern.Replace(t, content)).ToList();
    }

    /// <summary>Runs of "&lt;0xNN&gt;" tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
    sealed class ByteFallback : TokenDecoder
    {
        static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

        public override List<string> DecodeChain(List<string> tokens)
        {
            var (result, pending) = (new List<string>(), new List<byte>());
            foreach (var token in tokens)
            {
                if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                    && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var b))
                {
                    pending.Add(b);
                    continue;
                }
                Flush(result, pending);
                result.Add(token);
            }
            Flush(result, pending);
            return result;
        }

        static void Flush(List<string> result, List<byte> pending)
        {
            if (pending.Count == 0) return;
            try
            {
                result.Add(Strict.GetString(pending.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                result.AddRange(Enumerable.Repeat("\uFFFD", pending.Count));
            }
            pending.Clear();
        }
    }

    sealed class Fuse : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Removes up to <paramref name="start"/> leading and <paramref name="stop"/> trailing <paramref name="content"/> from each token.</summary>
    sealed class Strip(char content, int start, int stop) : TokenDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.Select(t =>
        {
            var (from, to) = (0, t.Length);
            while (from < start && from < t.Length && t[from] == content) from++;
            while (t.Length - to < stop && to > from && t[to - 1] == content) to--;
            return t[from..to];
        }).ToList();
    }
}
