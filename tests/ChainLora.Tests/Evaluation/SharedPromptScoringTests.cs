using ChainLora.Evaluation;
using ChainLora.Models;
using ChainLora.Tasks;

namespace ChainLora.Tests.Evaluation;

/// <summary>Scoring candidates with their shared prompt run once gives the scores of scoring each row whole.</summary>
public class SharedPromptScoringTests
{
    static List<PromptAndContinuation> Rows(int seed)
    {
        var random = new Random(seed);
        List<int> Tokens(int n) => Enumerable.Range(0, n).Select(_ => random.Next(3, 64)).ToList();
        var rows = new List<PromptAndContinuation>();
        foreach (var promptLength in new[] { 9, 1, 14, 3, 22, 6 })
        {
            var prompt = Tokens(promptLength);                                   // one instance per example
            var candidates = random.Next(1, 5);
            for (var c = 0; c < candidates; c++) rows.Add(new PromptAndContinuation(prompt, Tokens(random.Next(1, 6))));
        }
        return rows;
    }

    public static TheoryData<string, int> Cases => new() { { "llama", 8192 }, { "llama", 40 }, { "opt", 8192 }, { "opt", 40 } };

    [Theory, MemberData(nameof(Cases))]
    public void Shared_prompt_scores_equal_whole_row_scores(string architecture, int batchTokens)
    {
        using CausalLM model = architecture == "llama" ? TinyModels.Llama(seed: 4) : TinyModels.Opt(seed: 4);
        var rows = Rows(7);
        var whole = ContinuationScoring.Score(model, rows, batchTokens);
        var shared = ContinuationScoring.ScoreSharingPrompts(model, rows, batchTokens);
        Assert.Equal(whole.Length, shared.Length);
        for (var i = 0; i < whole.Length; i++)
            Assert.True(Math.Abs(whole[i] - shared[i]) < 1e-5, $"row {i}: {whole[i]} against {shared[i]}");
        // The test can fail: the scores differ between rows.
        Assert.True(whole.Distinct().Count() > whole.Length / 2);
    }
}
