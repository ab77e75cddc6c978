using ChainLora.Evaluation;

namespace ChainLora.Tests.Evaluation;

/// <summary>SQuAD v1.1 normalisation, exact match and token F1; expected values computed by hand.</summary>
public class AnswerMetricsTests
{
    [Theory]
    [InlineData("The  Denver Broncos!", "denver broncos")]
    [InlineData("a, an; THE apple", "apple")]
    [InlineData("Anthem of the Seas", "anthem of seas")]          // "an" inside a word stays
    [InlineData("  U.S.  Army\t(1944) ", "us army 1944")]
    [InlineData("café—bar", "café—bar")]                          // only ASCII punctuation goes, as in string.punctuation
    [InlineData("The", "")]
    public void Normalize_lowercases_strips_punctuation_articles_and_extra_space(string text, string expected) =>
        Assert.Equal(expected, AnswerMetrics.Normalize(text));

    [Theory]
    [InlineData("Denver Broncos", "The Denver Broncos", 1.0)]
    [InlineData("the Broncos won", "Denver Broncos", 0.5)]          // 1 common; p = 1/2, r = 1/2
    [InlineData("Denver Denver Broncos", "Denver Broncos", 0.8)]    // 2 common; p = 2/3, r = 1 -> 2(2/3)/(5/3)
    [InlineData("Broncos", "Denver Broncos", 2.0 / 3)]              // p = 1, r = 1/2
    [InlineData("Carolina Panthers", "Denver Broncos", 0.0)]
    [InlineData("the", "a", 1.0)]                                   // both normalise to nothing
    [InlineData("", "Denver", 0.0)]
    public void F1_counts_shared_tokens_with_multiplicity(string prediction, string gold, double expected) =>
        Assert.Equal(expected, AnswerMetrics.F1(prediction, gold), 12);

    [Theory]
    [InlineData("Denver Broncos.", "denver broncos", true)]
    [InlineData("The Denver Broncos", "Denver Broncos", true)]
    [InlineData("3", "three", false)]
    [InlineData("Broncos", "Denver Broncos", false)]
    public void Exact_match_compares_normalised_text(string prediction, string gold, bool expected) =>
        Assert.Equal(expected, AnswerMetrics.ExactMatch(prediction, gold));

    [Fact]
    public void Best_over_gold_answers_takes_the_maximum()
    {
        string[] golds = ["Denver Broncos", "Broncos", "the Broncos of Denver"];
        Assert.Equal(1.0, AnswerMetrics.BestF1("Broncos", golds), 12);
        Assert.True(AnswerMetrics.BestExactMatch("broncos", golds));
        Assert.Equal(0.8, AnswerMetrics.BestF1("Denver Denver Broncos", ["Carolina", "Denver Broncos"]), 12);
        Assert.False(AnswerMetrics.BestExactMatch("Denver", golds));
    }
}
