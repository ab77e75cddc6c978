// Unicode NFC and NFD (UAX #15), for the tokenizer.json normalizers of that name (Qwen2/2.5/3 use
// NFC). .NET's string.Normalize returns its input unchanged in globalization-invariant mode, which
// ChainLora runs in, so the algorithm is here over UnicodeData/nfc.txt (canonical decompositions,
// combining classes and composition exclusions, written by scripts/make_unicode_tables.py).
using System.Text;

namespace ChainLora.Tokenization;

static class UnicodeNormalization
{
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    static readonly Lazy<Tables> Data = new(Load);

    sealed record Tables(Dictionary<int, int[]> Decompositions, Dictionary<int, byte> Classes, Dictionary<(int, int), int> Compositions);

    /// <summary>Canonical decomposition then canonical ordering.</summary>
    public static string Nfd(string text) => text.All(c => c < 0xC0) ? text : ToString(Decompose(text));

    /// <summary>NFD then canonical composition. Text below U+0300 is already NFC (its quick check is Yes).</summary>
    public static string Nfc(string text) => text.All(c => c < 0x300) ? text : ToString(Compose(Decompose(text)));

    static List<int> Decompose(string text)
    {
        var tables = Data.Value;
        var result = new List<int>(text.Length);
        for (var i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
            DecomposeInto(char.IsSurrogatePair(text, i) ? char.ConvertToUtf32(text[i], text[i + 1]) : text[i], tables, result);
        // Canonical ordering: a stable sort of each run of non-starters by combining class.
        for (var start = 0; start < result.Count;)
        {
            if (ClassOf(result[start], tables) == 0)
            {
                start++;
                continue;
            }
            var end = start;
            while (end < result.Count && ClassOf(result[end], tables) != 0) end++;
            var run = result.GetRange(start, end - start).OrderBy(c => ClassOf(c, tables)).ToList(); // OrderBy is stable
            for (var k = 0; k < run.Count; k++) result[start + k] = run[k];
            start = end;
        }
        return result;
    }

    static void DecomposeInto(int cp, Tables tables, List<int> result)
    {
        if (cp is >= SBase and < SBase + SCount)
        {
            var s = cp - SBase;
            result.Add(LBase + s / NCount);
            result.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) result.Add(TBase + s % TCount);
            return;
        }
        if (tables.Decompositions.TryGetValue(cp, out var parts))
            foreach (var p in parts) DecomposeInto(p, tables, result);
        else
            result.Add(cp);
    }

    static List<int> Compose(List<int> cps)
    {
        var tables = Data.Value;
        var result = new List<int>(cps.Count);
        var starter = -1; // index in result of the last starter
        var lastClass = 0; // combining class of the last character kept after the starter
        foreach (var cp in cps)
        {
            var cls = ClassOf(cp, tables);
            // Not blocked: right after the starter, or every character between has a lower, non-zero class.
            var reachable = starter >= 0 && (result.Count - 1 == starter || lastClass != 0 && lastClass < cls);
            if (reachable && Composite(result[starter], cp, tables) is { } composite)
            {
                result[starter] = composite;
                continue;
            }
            if (cls == 0) starter = result.Count;
            lastClass = cls;
            result.Add(cp);
        }
        return result;
    }

    static int? Composite(int a, int b, Tables tables)
    {
        if (a is >= LBase and < LBase + LCount && b is >= VBase and < VBase + VCount)
            return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
        if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && b is > TBase and < TBase + TCount)
            return a + (b - TBase);
        return tables.Compositions.TryGetValue((a, b), out var c) ? c : null;
    }

    static int ClassOf(int cp, Tables tables) => tables.Classes.TryGetValue(cp, out var c) ? c : 0;

    static string ToString(List<int> cps)
    {
        var sb = new StringBuilder(cps.Count);
        foreach (var cp in cps) sb.Append(cp is >= 0xD800 and < 0xE000 ? ((char)cp).ToString() : char.ConvertFromUtf32(cp));
        return sb.ToString();
    }

    static Tables Load()
    {
        var assembly = typeof(UnicodeNormalization).Assembly;
        using var stream = assembly.GetManifestResourceStream("ChainLora.Tokenization.UnicodeData.nfc.txt")
            ?? throw new InvalidOperationException("the embedded resource UnicodeData/nfc.txt is missing from ChainLora.dll");
        using var reader = new StreamReader(stream);
        var (decompositions, classes, excluded) = (new Dictionary<int, int[]>(), new Dictionary<int, byte>(), new HashSet<int>());
        static int Hex(string s) => Convert.ToInt32(s, 16);
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            var f = line.Split(' ');
            switch (f[0])
            {
                case "D":
                    decompositions[Hex(f[1])] = f[2..].Select(Hex).ToArray();
                    break;
                case "C":
                    for (var cp = Hex(f[1]); cp <= Hex(f[2]); cp++) classes[cp] = byte.Parse(f[3]);
                    break;
                case "X":
                    excluded.Add(Hex(f[1]));
                    break;
            }
        }
        var compositions = decompositions.Where(d => d.Value.Length == 2 && !excluded.Contains(d.Key))
            .ToDictionary(d => (d.Value[0], d.Value[1]), d => d.Key);
        return new Tables(decompositions, classes, compositions);
    }
}
