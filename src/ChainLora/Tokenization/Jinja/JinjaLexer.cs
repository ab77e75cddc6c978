// Template text to tokens with jinja2's whitespace rules as transformers configures them:
// trim_blocks (the first newline after a block or comment tag is removed), lstrip_blocks (spaces
// and tabs before a block or comment tag on its own line are removed), "-" on a tag strips all
// whitespace on that side, "+" turns lstrip_blocks / trim_blocks off for it, line endings become
// "\n" and one trailing newline of the template is dropped (keep_trailing_newline=False).
// Mirrors jinja2/lexer.py tokeniter.
using System.Globalization;
using System.Text;

namespace ChainLora.Tokenization.Jinja;

enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

readonly record struct Token(TokenKind Kind, string Value, int Line, object? Literal = null);

/// <summary>A template the parser cannot read: the message names the line.</summary>
public sealed class TemplateSyntaxException(string message) : Exception(message);

static class JinjaLexer
{
    static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    public static List<Token> Tokenize(string source)
    {
        source = source.Replace("\r\n", "\n").Replace('\r', '\n');
        if (source.EndsWith('\n')) source = source[..^1];
        var tokens = new List<Token>();
        var (pos, line, lineStarting) = (0, 1, true);
        while (pos < source.Length)
        {
            var start = NextTagStart(source, pos);
            var text = source[pos..(start < 0 ? source.Length : start)];
            if (start < 0)
            {
                Emit(text);
                break;
            }
            var kind = source[start + 1]; // '{', '%' or '#'
            var sign = start + 2 < source.Length && source[start + 2] is '-' or '+' ? source[start + 2] : '\0';
            if (sign == '-') text = text.TrimEnd();
            else if (sign != '+' && kind != '{')
            {
                var lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && lineStart < text.Length && text[lineStart..].All(char.IsWhiteSpace))
                    text = text[..lineStart];
            }
            Emit(text);
            pos = start + 2 + (sign != '\0' ? 1 : 0);
            if (kind == '#')
            {
                var close = source.IndexOf("#}", pos, StringComparison.Ordinal);
                if (close < 0) throw new TemplateSyntaxException($"line {line}: unclosed comment");
                line += Count(source, pos, close, '\n');
                pos = TagEnd(source, close, close + 2, block: true, ref line, out lineStarting);
            }
            else if (kind == '%' && RawBlock(source, pos, out var rawBody, out var afterRaw))
            {
                tokens.Add(new(TokenKind.Text, rawBody.Text, line));
                line += rawBody.Text.Count(c => c == '\n');
                pos = afterRaw;
                lineStarting = rawBody.EndsLine;
            }
            else
            {
                tokens.Add(new(kind == '{' ? TokenKind.VariableBegin : TokenKind.BlockBegin, kind == '{' ? "{{" : "{%", line));
                pos = Expression(source, pos, kind == '{' ? "}}" : "%}", tokens, ref line, out lineStarting);
            }
        }
        tokens.Add(new(TokenKind.End, "", line));
        return tokens;

        void Emit(string text)
        {
            if (text.Length > 0) tokens.Add(new(TokenKind.Text, text, line));
            line += text.Count(c => c == '\n');
        }
    }

    static int NextTagStart(string s, int from)
    {
        for (var i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    static int Count(string s, int from, int to, char c)
    {
        var n = 0;
        for (var i = from; i < to; i++) if (s[i] == c) n++;
        return n;
    }

    /// <summary>
    /// After a tag's closing delimiter (at <paramref name="close"/>..<paramref name="after"/>): "-"
    /// eats all following whitespace; a block or comment without "+" eats one newline (trim_blocks).
    /// </summary>
    static int TagEnd(string s, int close, int after, bool block, ref int line, out bool endsLine)
    {
        var pos = after;
        var sign = close > 0 ? s[close - 1] : '\0';
        if (sign == '-')
            while (pos < s.Length && char.IsWhiteSpace(s[pos])) pos++;
        else if (block && sign != '+' && pos < s.Length && s[pos] == '\n')
            pos++;
        line += Count(s, after, pos, '\n');
        endsLine = pos > after ? s[pos - 1] == '\n' : false;
        return pos;
    }

    /// <summary>{% raw %}...{% endraw %}: the body verbatim (whitespace control on its tags applies).</summary>
    static bool RawBlock(string s, int pos, out (string Text, bool EndsLine) body, out int after)
    {
        body = default;
        after = pos;
        var p = pos;
        while (p < s.Length && char.IsWhiteSpace(s[p])) p++;
        if (string.CompareOrdinal(s, p, "raw", 0, 3) != 0) return false;
        p += 3;
        while (p < s.Length && char.IsWhiteSpace(s[p])) p++;
        var stripAfterOpen = p < s.Length && s[p] == '-';
        if (stripAfterOpen || p < s.Length && s[p] == '+') p++;
        if (string.CompareOrdinal(s, p, "%}", 0, 2) != 0) return false;
        p += 2;
        var end = s.IndexOf("endraw", p, StringComparison.Ordinal);
        var open = end < 0 ? -1 : s.LastIndexOf("{%", end, StringComparison.Ordinal);
        var close = end < 0 ? -1 : s.IndexOf("%}", end, StringComparison.Ordinal);
        if (open < p || close < 0) throw new TemplateSyntaxException("unclosed {% raw %} block");
        var text = s[p..open];
        if (stripAfterOpen) text = text.TrimStart();
        if (s[open + 2] == '-') text = text.TrimEnd();
        var line = 0;
        after = TagEnd(s, close, close + 2, block: true, ref line, out var endsLine);
        body = (text, endsLine);
        return true;
    }

    /// <summary>The tokens of one {{ ... }} or {% ... %} up to its closing delimiter at bracket depth 0.</summary>
    static int Expression(string s, int pos, string closer, List<Token> tokens, ref int line, out bool endsLine)
    {
        var depth = 0;
        while (true)
        {
            while (pos < s.Length && char.IsWhiteSpace(s[pos]))
            {
                if (s[pos] == '\n') line++;
                pos++;
            }
            if (pos >= s.Length) throw new TemplateSyntaxException($"line {line}: unexpected end of template, expected '{closer}'");
            if (depth == 0)
            {
                // "-" strips whitespace after the tag; "+" (blocks only) keeps the newline trim_blocks would eat.
                var signed = (s[pos] == '-' || s[pos] == '+' && closer == "%}") && string.CompareOrdinal(s, pos + 1, closer, 0, 2) == 0;
                if (signed || string.CompareOrdinal(s, pos, closer, 0, 2) == 0)
                {
                    var close = signed ? pos + 1 : pos;
                    tokens.Add(new(closer == "}}" ? TokenKind.VariableEnd : TokenKind.BlockEnd, closer, line));
                    return TagEnd(s, close, close + 2, block: closer == "%}", ref line, out endsLine);
                }
            }
            var c = s[pos];
            if (c is '\'' or '"')
            {
                pos = StringLiteral(s, pos, line, out var value);
                tokens.Add(new(TokenKind.String, value, line, value));
            }
            else if (char.IsAsciiDigit(c))
                pos = NumberLiteral(s, pos, line, tokens);
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                var start = pos;
                while (pos < s.Length && (char.IsAsciiLetterOrDigit(s[pos]) || s[pos] == '_')) pos++;
                tokens.Add(new(TokenKind.Name, s[start..pos], line));
            }
            else
            {
                var op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, pos, o, 0, o.Length) == 0)
                    ?? throw new TemplateSyntaxException($"line {line}: unexpected character '{c}'");
                if (op is "(" or "[" or "{") depth++;
                if (op is ")" or "]" or "}")
                {
                    if (depth == 0) throw new TemplateSyntaxException($"line {line}: unexpected '{op}'");
                    depth--;
                }
                tokens.Add(new(TokenKind.Operator, op, line));
                pos += op.Length;
            }
        }
    }

    static int NumberLiteral(string s, int pos, int line, List<Token> tokens)
    {
        var start = pos;
        while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        var isFloat = false;
        if (pos + 1 < s.Length && s[pos] == '.' && char.IsAsciiDigit(s[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < s.Length && (char.IsAsciiDigit(s[pos]) || s[pos] == '_')) pos++;
        }
        if (pos < s.Length && s[pos] is 'e' or 'E')
        {
            var p = pos + 1;
            if (p < s.Length && s[p] is '+' or '-') p++;
            if (p < s.Length && char.IsAsciiDigit(s[p]))
            {
                isFloat = true;
                pos = p;
                while (pos < s.Length && char.IsAsciiDigit(s[pos])) pos++;
            }
        }
        var text = s[start..pos].Replace("_", "");
        if (isFloat) tokens.Add(new(TokenKind.Float, text, line, double.Parse(text, CultureInfo.InvariantCulture)));
        else if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var integer)) tokens.Add(new(TokenKind.Integer, text, line, integer));
        else throw new TemplateSyntaxException($"line {line}: the integer {text} is too large");
        return pos;
    }

    /// <summary>A quoted literal with Python's escapes (jinja2 decodes them with unicode-escape).</summary>
    static int StringLiteral(string s, int pos, int line, out string value)
    {
        var quote = s[pos++];
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= s.Length) throw new TemplateSyntaxException($"line {line}: unterminated string literal");
            var c = s[pos++];
            if (c == quote) break;
            if (c != '\\' || pos >= s.Length)
            {
                sb.Append(c);
                continue;
            }
            var e = s[pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\n': break; // a backslash-newline continues the line
                case 'x' or 'u' or 'U':
                    var width = e switch { 'x' => 2, 'u' => 4, _ => 8 };
                    if (pos + width > s.Length || !int.TryParse(s.AsSpan(pos, width), NumberStyles.HexNumber, null, out var code))
                        throw new TemplateSyntaxException($"line {line}: truncated \\{e} escape in a string literal");
                    sb.Append(char.ConvertFromUtf32(code));
                    pos += width;
                    break;
                case >= '0' and <= '7':
                    var oct = e - '0';
                    for (var k = 0; k < 2 && pos < s.Length && s[pos] is >= '0' and <= '7'; k++) oct = oct * 8 + (s[pos++] - '0');
                    sb.Append((char)oct);
                    break;
                default:
                    sb.Append('\\').Append(e); // Python keeps unknown escapes as written
                    break;
            }
        }
        value = sb.ToString();
        return pos;
    }
}
