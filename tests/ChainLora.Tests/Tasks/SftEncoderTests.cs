using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Tests.Tasks;

/// <summary>Which tokens of an sft example carry the loss: the assistant's answers with their end-of-turn marker, found through the template.</summary>
public sealed class SftEncoderTests
{
    /// <summary>One id per character (its code point); BOS 1, EOS 2.</summary>
    sealed class CharTokenizer : ITextTokenizer
    {
        public int VocabSize => 0x10000;
        public int BosId => 1;
        public int EosId => 2;
        public int PadId => 0;
        public IReadOnlyList<int> Encode(string text, bool addBos) => [.. addBos ? [BosId] : Array.Empty<int>(), .. EncodeContinuation(text)];
        public IReadOnlyList<int> EncodeContinuation(string text) => [.. text.Select(c => (int)c)];
        public string Decode(IEnumerable<int> ids) => new([.. ids.Where(i => i > 2).Select(i => (char)i)]);
    }

    /// <summary>ChatML, as Qwen's template writes it.</summary>
    static string ChatMl(IReadOnlyList<SftTurn> turns, bool addGenerationPrompt) =>
        string.Concat(turns.Select(t => $"<|im_start|>{t.Role}\n{t.Content}<|im_end|>\n")) + (addGenerationPrompt ? "<|im_start|>assistant\n" : "");

    static SftExample Chat(params SftTurn[] turns) => new(SftLayout.Messages, "chat.jsonl:1", Turns: turns);

    static readonly SftExample TwoRounds = Chat(new(SftTurn.System, "S"), new(SftTurn.User, "Q"), new(SftTurn.Assistant, "R"),
        new(SftTurn.User, "Q2"), new(SftTurn.Assistant, "R2"));

    [Fact]
    public void Only_the_answers_with_their_end_of_turn_marker_carry_the_loss()
    {
        var segments = SftEncoder.Segments(TwoRounds, ChatMl);
        Assert.Equal([
            new("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n", false),
            new("R<|im_end|>\n", true),
            new("<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n", false),
            new("R2<|im_end|>\n", true)], segments);
        Assert.Equal(ChatMl(TwoRounds.Turns!, false), string.Concat(segments.Select(s => s.Text)));

        var encoded = SftEncoder.Encode(segments, new CharTokenizer(), conversation: true, maxTokens: 1000);
        var trained = new string([.. encoded.InputIds.Where((_, i) => encoded.LossMask[i]).Select(i => (char)i)]);
        Assert.Equal("R<|im_end|>\nR2<|im_end|>\n", trained);
        Assert.Equal(ChatMl(TwoRounds.Turns!, false).Length, encoded.InputIds.Length); // the template writes its own BOS: none added
        Assert.Equal(0, encoded.CutTokens);
    }

    [Fact]
    public void Train_on_inputs_trains_on_every_token()
    {
        var encoded = SftEncoder.Encode(SftEncoder.Segments(TwoRounds, ChatMl, trainOnInputs: true), new CharTokenizer(), conversation: true, maxTokens: 1000);
        Assert.All(encoded.LossMask, Assert.True);
    }

    [Fact]
    public void Plain_prompt_completion_trains_on_the_completion_and_eos_and_text_on_all_but_bos()
    {
        var pair = new SftExample(SftLayout.PromptCompletion, "p.jsonl:1", Prompt: "ab", Completion: "cd");
        var encoded = SftEncoder.Encode(SftEncoder.Segments(pair, null), new CharTokenizer(), conversation: false, maxTokens: 100);
        Assert.Equal([1, 'a', 'b', 'c', 'd', 2], encoded.InputIds);
        Assert.Equal([false, false, false, true, true, true], encoded.LossMask);

        var text = new SftExample(SftLayout.Text, "t.jsonl:1", Text: "xy");
        var whole = SftEncoder.Encode(SftEncoder.Segments(text, null), new CharTokenizer(), conversation: false, maxTokens: 100);
        Assert.Equal([1, 'x', 'y', 2], whole.InputIds);
        Assert.Equal([false, true, true, true], whole.LossMask);
    }

    [Fact]
    public void Truncation_cuts_from_the_end_and_says_how_much()
    {
        var pair = new SftExample(SftLayout.PromptCompletion, "p.jsonl:1", Prompt: "ab", Completion: "cdef");
        var encoded = SftEncoder.Encode(SftEncoder.Segments(pair, null), new CharTokenizer(), conversation: false, maxTokens: 4);
        Assert.Equal([1, 'a', 'b', 'c'], encoded.InputIds);
        Assert.Equal(4, encoded.CutTokens); // d, e, f and EOS
        Assert.Equal(1, encoded.TrainedTokens);
    }

    [Fact]
    public void A_template_that_rewrites_earlier_turns_is_refused_naming_the_example_and_turn()
    {
        // Like Qwen3's, which drops reasoning from answers that a later user turn follows: here the last answer alone gets a marker.
        string Rewrites(IReadOnlyList<SftTurn> turns, bool generation) =>
            string.Concat(turns.Select((t, i) => i == turns.Count - 1 && t.Role == SftTurn.Assistant ? $"[last]{t.Content}|" : $"{t.Role}:{t.Content}|"))
            + (generation ? "assistant:" : "");
        var message = Assert.Throws<InvalidDataException>(() => SftEncoder.Segments(TwoRounds, Rewrites)).Message;
        Assert.StartsWith("chat.jsonl:1: the chat template renders turn 3 (assistant) differently once later turns follow", message);
    }
}
