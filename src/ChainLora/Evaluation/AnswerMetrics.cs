// SQuAD v1.1's answer metrics (evaluate-v1.1.py): normalise both texts (lower-case, drop ASCII
// punctuation, drop the articles a/an/the, collapse whitespace), then exact match and token F1,
// each the best over the gold answers. As in MeZO and SQuAD v2.0, two empty answers match (F1 1).
using System.Text;
using System.Text.RegularExpressions;

namespace ChainLora.Evaluation;

public static partial class AnswerMetrics
{
    /// <summary>Python's string.punctuation.</summary>
    const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    public static string Normalize(string text)
    {
        var lower = text.ToLowerInvariant();
        var kept = new StringBuilder(lower.Length);
        foreach (var c in lower)
            if (!Punctuation.Contains(c)) kept.Append(c);
        var noArticles = Articles().Replace(kept.ToString(), " ");
        return string.Join(' ', Tokens(noArticles));
    }

    public static bool ExactMatch(string prediction, string gold) => Normalize(prediction) == Normalize(gold);

    public static double F1(string prediction, string gold)
    {
        var predicted = Tokens(Normalize(prediction));
        var expected = Tokens(Normalize(gold));
        if (predicted.Length == 0 || expected.Length == 0) return predicted.Length == expected.Length ? 1 : 0;
        var counts = expected.GroupBy(t => t).ToDictionary(g => g.Key, g => g.Count());
        var same = 0;
        foreach (var token in predicted)
            if (counts.TryGetValue(token, out var n) && n > 0)
            {
                counts[token] = n - 1;
                same++;
            }
        if (same == 0) return 0;
        var precision = (double)same / predicted.Length;
        var recall = (double)same / expected.Length;
        return 2 * precision * recall / (precision + recall);
    }

    public static double BestF1(string prediction, IEnumerable<string> golds) => golds.Max(g => F1(prediction, g));

    public static bool BestExactMatch(string prediction, IEnumerable<string> golds) => golds.Any(g => ExactMatch(prediction, g));

    /// <summary>Python's str.split(): runs of whitespace separate, none at the ends.</summary>
    static string[] Tokens(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    [GeneratedRegex(@"\b(a|an|the)\b")]
    private static partial Regex Articles();
}
