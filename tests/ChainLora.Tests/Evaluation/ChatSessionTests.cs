using ChainLora.Evaluation;
using ChainLora.Loading;
using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Tests.Evaluation;

/// <summary>`chat`'s session: the template's prompt, replies streamed, stopping at the end of the turn, the history kept.</summary>
public sealed class ChatSessionTests : IDisposable
{
    readonly DirectoryInfo temp = Directory.CreateTempSubdirectory("chainlora-chat-");

    public void Dispose() => temp.Delete(recursive: true);

    [Fact]
    public void End_of_turn_ids_are_eos_the_generation_configs_and_the_markers_the_tokenizer_holds_as_one_token()
    {
        var dir = temp.FullName;
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", "qwen2", "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates", "qwen2.5-instruct", "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        var tokenizer = TokenizerLoader.FromDirectory(dir);
        var plain = ChatSession.EndOfTurnIds(tokenizer, dir);
        Assert.Contains(503, plain); // <|im_end|>
        Assert.Contains(501, plain); // <|endoftext|>
        Assert.Contains(tokenizer.EosId, plain);
        Assert.DoesNotContain(502, plain); // <|im_start|> starts a turn

        File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{"eos_token_id": [7, 9]}""");
        Assert.Superset(new HashSet<int> { 7, 9, 501, 503 }, new HashSet<int>(ChatSession.EndOfTurnIds(tokenizer, dir)));
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), "{");
        Assert.StartsWith($"{Path.Combine(dir, "generation_config.json")}: not valid JSON", Assert.Throws<InvalidDataException>(() => ChatSession.EndOfTurnIds(tokenizer, dir)).Message);
    }

    [Fact]
    public void Replies_stream_stop_at_the_end_of_the_turn_and_the_next_turn_sees_the_history()
    {
        var dir = SharedData.Require("models/stories260K");
        using var loaded = PretrainedModel.Load(dir);
        var session = ChatSession.For(loaded.Model, loaded.Tokenizer, dir, system: "Be kind.");
        var options = new GenerationOptions(MaxNewTokens: 30);
        var pieces = new List<string>();
        var first = session.Reply("Tell me a story.", options, pieces.Add);
        Assert.Equal(first, string.Concat(pieces));
        Assert.NotEmpty(first);

        // The same reply by hand: stories260K has no template, so ChatML renders the prompt; greedy until EOS.
        var prompt = "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\n";
        var ids = loaded.Tokenizer.Encode(prompt, addBos: false);
        var byHand = Generation.Generate(loaded.Model, [ids], options with { StopIds = new HashSet<int> { loaded.Tokenizer.EosId } })[0];
        Assert.Equal(loaded.Tokenizer.Decode(byHand), first);

        var second = session.Reply("And then?", options);
        Assert.Equal([SftTurn.System, SftTurn.User, SftTurn.Assistant, SftTurn.User, SftTurn.Assistant], session.Turns.Select(t => t.Role));
        Assert.Equal((first, second), (session.Turns[2].Content, session.Turns[4].Content));
    }
}
