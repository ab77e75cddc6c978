using Apache.Arrow;
using Apache.Arrow.Types;
using ChainLora.Tasks;

namespace ChainLora.Tests.Tasks;

/// <summary>A user's own sft data in the layouts TRL, axolotl and LLaMA-Factory read, and the errors that name where a row is wrong.</summary>
public sealed class SftDataTests : TempFolderTest
{

    static SftTurn U(string text) => new(SftTurn.User, text);
    static SftTurn A(string text) => new(SftTurn.Assistant, text);
    static SftTurn S(string text) => new(SftTurn.System, text);

    static string Fails(string path) => Assert.Throws<InvalidDataException>(() => SftData.ReadFile(path)).Message;

    [Fact]
    public void Each_layout_is_detected_from_its_fields_and_read_as_turns_or_text()
    {
        var messages = SftData.ReadFile(Write("m.jsonl", """
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
            {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}
            """));
        Assert.Equal([S("Be brief."), U("Hi"), A("Hello.")], messages[0].Turns!);
        Assert.Equal([U("2+2?"), A("4"), U("3+3?"), A("6")], messages[1].Turns!);
        Assert.All(messages, e => Assert.Equal(SftLayout.Messages, e.Layout));

        var shareGpt = Assert.Single(SftData.ReadFile(Write("s.jsonl", """
            {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q"}, {"from": "gpt", "value": "R"}]}
            """)));
        Assert.Equal([S("S"), U("Q"), A("R")], shareGpt.Turns!);

        var plain = Assert.Single(SftData.ReadFile(Write("p.jsonl", """{"prompt": "The sky is", "completion": " blue."}""")));
        Assert.False(plain.IsConversation);
        Assert.Equal(("The sky is", " blue."), (plain.Prompt, plain.Completion));

        var conversational = Assert.Single(SftData.ReadFile(Write("c.jsonl", """
            {"prompt": [{"role": "user", "content": "Colour of the sky?"}], "completion": [{"role": "assistant", "content": "Blue."}]}
            """)));
        Assert.Equal([U("Colour of the sky?"), A("Blue.")], conversational.Turns!);

        var alpaca = SftData.ReadFile(Write("a.jsonl", """
            {"instruction": "Translate to French.", "input": "cat", "output": "chat"}
            {"instruction": "Name a colour.", "input": "", "output": "Red", "system": "You are terse."}
            {"instruction": "Say hi.", "output": "Hi"}
            """));
        Assert.Equal([U("Translate to French.\ncat"), A("chat")], alpaca[0].Turns!);
        Assert.Equal([S("You are terse."), U("Name a colour."), A("Red")], alpaca[1].Turns!);
        Assert.Equal([U("Say hi."), A("Hi")], alpaca[2].Turns!);

        var text = Assert.Single(SftData.ReadFile(Write("t.jsonl", """{"text": "Once upon a time."}""")));
        Assert.Equal(("Once upon a time.", SftLayout.Text), (text.Text, text.Layout));
    }

    [Fact]
    public void A_json_array_file_is_read_as_alpaca_data_json_is_and_its_errors_name_the_items_line()
    {
        var path = Write("alpaca_data.json", """
            [
              {"instruction": "One", "input": "", "output": "1"},
              {
                "instruction": "Two",
                "input": "",
                "output": "2"
              },
              {"instruction": "Three", "input": "", "output": 3}
            ]
            """);
        var message = Fails(path);
        Assert.Equal($"{path}:8: field 'output': expected a string, found 3", message);

        File.WriteAllText(path, """[{"instruction": "One", "output": "1"}, {"instruction": "Two", "output": "2"}]""");
        Assert.Equal(["1", "2"], SftData.ReadFile(path).Select(e => e.Turns![^1].Content));

        File.WriteAllText(path, "[\n{\"text\": \"a\"},\n\"b\"\n]");
        Assert.Equal($"{path}:3: expected a JSON object per item of the array", Fails(path));
    }

    [Fact]
    public void A_parquet_file_of_messages_is_read_like_the_jsonl()
    {
        var path = Path.Combine(Temp.FullName, "train-00000-of-00001.parquet");
        var turn = new StructType([new Field("role", StringType.Default, true), new Field("content", StringType.Default, true)]);
        var turns = new StructArray(turn, 4,
            [ParquetFiles.Strings("user", "assistant", "user", "assistant"), ParquetFiles.Strings("Hi", "Hello.", "Bye", "Goodbye.")],
            ArrowBuffer.Empty, nullCount: 0);
        var offsets = new ArrowBuffer.Builder<int>().AppendRange([0, 2, 4]).Build();
        var messages = new ListArray(new ListType(new Field("item", turn, true)), 2, offsets, turns, ArrowBuffer.Empty, nullCount: 0);
        ParquetFiles.Write(path, ("messages", messages));

        var examples = SftData.ReadFile(path);
        Assert.Equal([U("Hi"), A("Hello.")], examples[0].Turns!);
        Assert.Equal([U("Bye"), A("Goodbye.")], examples[1].Turns!);
        Assert.Equal($"{path}: row 2", examples[1].Location);
    }

    [Fact]
    public void Splits_come_from_file_names_and_a_single_file_is_the_train_pool()
    {
        Write("data/train.jsonl", """{"text": "a"}""" + "\n" + """{"text": "b"}""");
        Write("data/validation.json", """[{"prompt": "p", "completion": "c"}]""");
        var splits = SftData.Read(Path.Combine(Temp.FullName, "data"));
        Assert.Equal(2, splits[Split.Train].Count);
        Assert.Equal("c", Assert.Single(splits[Split.Validation]).Completion);
        Assert.False(splits.ContainsKey(Split.Test));

        var single = SftData.Read(Path.Combine(Temp.FullName, "data", "train.jsonl"));
        Assert.Equal([Split.Train], single.Keys);
        Assert.Throws<FileNotFoundException>(() => SftData.Read(Path.Combine(Temp.FullName, "missing.jsonl")));
    }

    [Fact]
    public void Bad_rows_are_refused_naming_the_file_the_line_and_the_field()
    {
        var role = Write("role.jsonl", """
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello."}]}
            """);
        Assert.Equal($"{role}:2: field 'messages[1].role': 'bot' is not a role here (expected system, user, assistant)", Fails(role));

        var content = Write("content.jsonl", """{"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}""");
        Assert.Equal($"{content}:1: field 'messages[0].content': missing", Fails(content));

        var mixed = Write("mixed.jsonl", """
            {"text": "a"}
            {"prompt": "p", "completion": "c"}
            """);
        Assert.Equal($"{mixed}:2: this row is in the prompt/completion layout, the file's first row in the text layout; keep one layout per file", Fails(mixed));

        var unknown = Write("unknown.jsonl", """{"question": "q", "answer": "a"}""");
        Assert.StartsWith($"{unknown}:1: no sft layout fits this row (fields: question, answer); expected messages", Fails(unknown));

        var noAnswer = Write("noanswer.jsonl", """{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]}""");
        Assert.Equal($"{noAnswer}:1: no assistant turn, so nothing to train on", Fails(noAnswer));

        var lateSystem = Write("late.jsonl", """{"messages": [{"role": "user", "content": "Q"}, {"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}]}""");
        Assert.Equal($"{lateSystem}:1: a system turn after the first; chat templates take the system prompt first", Fails(lateSystem));

        var completionRole = Write("cr.jsonl", """{"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "user", "content": "A"}]}""");
        Assert.Equal($"{completionRole}:1: field 'completion': expected assistant turns only", Fails(completionRole));

        var emptyOutput = Write("empty.jsonl", """{"instruction": "Q", "output": ""}""");
        Assert.Equal($"{emptyOutput}:1: field 'output': empty: nothing to train on", Fails(emptyOutput));

        Assert.Equal($"{Write("none.jsonl", "\n")}: no examples", Fails(Path.Combine(Temp.FullName, "none.jsonl")));
        Assert.StartsWith($"{Write("x.tsv", "text\na")}: unsupported data file for sft", Fails(Path.Combine(Temp.FullName, "x.tsv")));
    }
}
