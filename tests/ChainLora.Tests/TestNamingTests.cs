using System.Reflection;
using System.Text.RegularExpressions;

namespace ChainLora.Tests;

/// <summary>
/// Every test reads as a sentence of what holds, its words joined by underscores
/// (A_packed_row_gives_each_example_the_loss_it_has_alone): at least three words, and no word
/// spelled in PascalCase except the proper names below.
/// </summary>
public sealed partial class TestNamingTests
{
    /// <summary>Names whose own spelling has an inner capital.</summary>
    static readonly HashSet<string> ProperNames = ["SentencePiece", "SuperGlue", "ChainTrainer", "DoRA", "stories260K", "LoRA", "PyTorch", "TensorBoard", "SQuAD"];

    [GeneratedRegex("[a-z0-9][A-Z]")]
    private static partial Regex InnerCapital();

    /// <summary>Why <paramref name="name"/> is not a sentence, or null.</summary>
    static string? Problem(string name)
    {
        var words = name.Split('_');
        if (words.Length < 3) return "fewer than three words";
        return words.FirstOrDefault(w => InnerCapital().IsMatch(w) && !ProperNames.Contains(w)) is { } camel ? $"'{camel}' is PascalCase" : null;
    }

    [Fact]
    public void Every_test_is_named_as_a_sentence_with_underscores()
    {
        var tests = typeof(TestNamingTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttributes<FactAttribute>().Any())   // TheoryAttribute derives from FactAttribute
            .ToList();
        Assert.True(tests.Count > 500, $"{tests.Count} tests found");
        var bad = tests.Select(m => (Name: $"{m.DeclaringType!.Name}.{m.Name}", Why: Problem(m.Name))).Where(x => x.Why is not null).ToList();
        Assert.True(bad.Count == 0, string.Join("\n", bad.Select(b => $"{b.Name}: {b.Why}")));
    }

    [Theory]
    [InlineData("SentencePiece_decode_drops_BOS_and_EOS", null)]
    [InlineData("Bpe_Encode_MatchesHandDerivedIds", "'MatchesHandDerivedIds' is PascalCase")]
    [InlineData("ZipRecordsAreRead", "fewer than three words")]
    [InlineData("Safetensors", "fewer than three words")]
    public void The_rule_accepts_sentences_and_names_what_is_not_one(string name, string? problem) => Assert.Equal(problem, Problem(name));
}
