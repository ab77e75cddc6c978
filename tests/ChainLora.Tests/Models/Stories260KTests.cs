using ChainLora.Evaluation;
using ChainLora.Loading;

namespace ChainLora.Tests.Models;

/// <summary>
/// The pretrained stories260K (llama2.c v0 checkpoint) against independent numbers: the NLL from
/// a PyTorch implementation of llama2.c's model, and the greedy text from llama2.c's run.c.
/// </summary>
public class Stories260KTests
{
    static PretrainedModel Load() => PretrainedModel.Load(SharedData.Require("models/stories260K"));

    [Fact]
    public void Nll_on_tinystories_sample_is_1_904()
    {
        var text = File.ReadAllText(SharedData.Require("corpus/tinystories-sample.txt"));
        using var m = Load();
        var result = Perplexity.OfText(m.Model, m.Tokenizer, text, cancel: TestContext.Current.CancellationToken);
        Assert.Equal(1.904, result.NllPerToken, 0.0015);
    }

    [Fact]
    public void Greedy_continuation_matches_llama2c_run_c()
    {
        using var m = Load();
        const string prompt = "Once upon a time, there was a little girl";
        var ids = m.Tokenizer.Encode(prompt, addBos: true);
        var expected = " named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";
        var expectedIds = m.Tokenizer.EncodeContinuation(expected).Count;
        var produced = Generation.Generate(m.Model, [ids], new GenerationOptions(MaxNewTokens: expectedIds + 2))[0];
        var text = m.Tokenizer.Decode([.. ids, .. produced]);
        Assert.StartsWith(prompt + expected, text);
    }

    [Fact]
    public void Batched_left_padded_generation_equals_one_prompt_at_a_time()
    {
        using var m = Load();
        var a = m.Tokenizer.Encode("Once upon a time, there was a little girl", addBos: true);
        var b = m.Tokenizer.Encode("Tom had a dog", addBos: true);
        var options = new GenerationOptions(MaxNewTokens: 12);
        var together = Generation.Generate(m.Model, [a, b], options, m.Tokenizer.PadId);
        Assert.Equal(Generation.Generate(m.Model, [a], options)[0], together[0]);
        Assert.Equal(Generation.Generate(m.Model, [b], options)[0], together[1]);
    }
}
