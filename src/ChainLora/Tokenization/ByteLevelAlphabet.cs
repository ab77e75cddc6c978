// GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py), which byte-level BPE vocabularies are
// written in: printable Latin-1 bytes stand for themselves, the other 68 for 256 + n in byte
// order, so " " is "Ġ" and "\n" is "Ċ".
using System.Text;

namespace ChainLora.Tokenization;

static class ByteLevelAlphabet
{
    static readonly char[] SymbolOf = BuildSymbols();
    static readonly Dictionary<char, byte> ByteOf = Enumerable.Range(0, 256).ToDictionary(b => SymbolOf[b], b => (byte)b);

    static char[] BuildSymbols()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
        var symbols = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++) symbols[b] = (char)(Printable(b) ? b : next++);
        return symbols;
    }

    /// <summary>The UTF-8 bytes of <paramref name="text"/>, each as its symbol.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var symbols = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) symbols[i] = SymbolOf[bytes[i]];
        return new string(symbols);
    }

    /// <summary>
    /// Appends the bytes <paramref name="token"/> stands for. As Hugging Face's ByteLevel decoder
    /// does, a token holding any character outside the alphabet (an added token such as
    /// "&lt;|eot_id|&gt;" is in it, but one with other characters may not be) adds its own UTF-8 bytes.
    /// </summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        if (token.All(ByteOf.ContainsKey)) bytes.AddRange(token.Select(c => ByteOf[c]));
        else bytes.AddRange(Encoding.UTF8.GetBytes(token));
    }
}
