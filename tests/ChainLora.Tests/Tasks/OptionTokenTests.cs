using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Tests.Tasks;

/// <summary>Option tokens with the stories260K SentencePiece tokenizer (512 pieces; skips without ../shared).</summary>
public class OptionTokenTests
{
    static ITextTokenizer Tokenizer() => TokenizerLoader.FromDirectory(SharedData.Require("models/stories260K"));

    [Theory]
    [InlineData(" terrible", 5)]
    [InlineData(" great", 3)]
    [InlineData("Yes", 2)]
    [InlineData("No", 2)]
    [InlineData("Maybe", 4)]
    public void Verbalizer_options_have_their_pinned_token_counts(string option, int tokens)
    {
        var tokenizer = Tokenizer();
        var ids = tokenizer.EncodeContinuation(option);
        Assert.Equal(tokens, ids.Count);
        Assert.Equal(option, tokenizer.Decode(ids));   // " great" keeps its space, "Yes" gets none
    }

    [Theory]
    [InlineData("sst2")]
    [InlineData("rte")]
    [InlineData("cb")]
    [InlineData("boolq")]
    [InlineData("wsc")]
    [InlineData("wic")]
    [InlineData("multirc")]
    [InlineData("copa")]
    [InlineData("record")]
    [InlineData("squad")]
    [InlineData("drop")]
    public void Prompt_then_option_tokens_spell_the_rendered_text(string task)
    {
        var tokenizer = Tokenizer();
        var encoder = new PromptEncoder(tokenizer, 4096);
        foreach (var example in PromptApprovalTests.Examples(task))
        {
            var rows = example is ChoiceExample c ? encoder.Choice(c).Candidates : [encoder.Target(example)];
            var texts = example is ChoiceExample choice ? choice.Options : [((AnswerExample)example).Target];
            for (var i = 0; i < rows.Count; i++)
            {
                Assert.Equal(tokenizer.BosId, rows[i].Prompt[0]);
                Assert.Equal(tokenizer.EncodeContinuation(texts[i]), rows[i].Continuation);
                Assert.Equal(example.Prompt + texts[i], tokenizer.Decode([.. rows[i].Prompt, .. rows[i].Continuation]));
            }
        }
    }
}
