using System.Text.Json;

namespace ChainLora.Tests.Cli;

/// <summary>`chainlora data`: each example as rendered text and tokens, marking which tokens carry the loss.</summary>
public sealed class DataCommandTests : TempFolderTest
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    /// <summary>A Qwen2.5-style model folder: a byte-level BPE tokenizer.json and Qwen2.5's chat template.</summary>
    string QwenFolder()
    {
        var dir = Path.Combine(Temp.FullName, "qwen");
        if (Directory.Exists(dir)) return dir;
        Directory.CreateDirectory(dir);
        File.Copy(Fixture("tokenizers", "qwen2", "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        File.Copy(Fixture("chat_templates", "qwen2.5-instruct", "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        return dir;
    }

    string Data(string text)
    {
        var path = Path.Combine(Temp.FullName, "chat.jsonl");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Json_lines_give_the_rendered_text_ids_and_a_mask_on_the_answer_and_its_end_of_turn_only()
    {
        var data = Data("""
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
            """);
        var (exit, output, error) = CliHarness.Run("data", "--model", QwenFolder(), "--data", data, "--json");
        Assert.True(exit == 0, error);
        using var line = JsonDocument.Parse(Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        var text = line.RootElement.GetProperty("text").GetString()!;
        // Qwen2.5's template adds its default system prompt when none is given.
        Assert.Equal("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n", text);
        var ids = line.RootElement.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var mask = line.RootElement.GetProperty("loss_mask").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.Equal(ids.Count, mask.Count);
        Assert.Equal(3, ids.Count(id => id == 502)); // <|im_start|> is one added token each time
        // The loss starts right after the last "<|im_start|>assistant\n" and runs through "<|im_end|>\n".
        var tokenizer = ChainLora.Tokenization.TokenizerLoader.FromDirectory(QwenFolder());
        List<int> answer = [.. tokenizer.EncodeContinuation("Hello."), 503, .. tokenizer.EncodeContinuation("\n")];
        var answerStart = ids.Count - answer.Count;
        Assert.Equal(answer, ids[answerStart..]);
        Assert.Equal([.. tokenizer.EncodeContinuation("assistant\n")], ids[(ids.LastIndexOf(502) + 1)..answerStart]);
        Assert.All(mask.Take(answerStart), m => Assert.Equal(0, m));
        Assert.All(mask.Skip(answerStart), m => Assert.Equal(1, m));
        Assert.Contains("1 examples", error);
    }

    [Fact]
    public void Text_output_marks_trained_tokens_and_truncation_says_what_it_cut()
    {
        var data = Data("""{"prompt": "The sky is", "completion": " blue and the sea is green."}""");
        var (exit, output, error) = CliHarness.Run("data", "--model", QwenFolder(), "--data", data, "--max-tokens", "6");
        Assert.True(exit == 0, error);
        Assert.StartsWith($"=== 1  {data}:1  prompt/completion: 6 tokens, ", output);
        Assert.Contains("[", output);
        Assert.Contains($"{data}:1: cut ", error);
        Assert.Contains("tokens from the end to fit --max-tokens 6", error);
    }

    [Fact]
    public void Bad_data_is_one_line_naming_the_file_line_and_field_with_exit_2()
    {
        var data = Data("""{"messages": [{"role": "user", "content": "Hi"}, {"role": "robot", "content": "x"}]}""");
        var (exit, _, error) = CliHarness.Run("data", "--model", QwenFolder(), "--data", data);
        Assert.Equal(2, exit);
        Assert.Equal($"error: {data}:1: field 'messages[1].role': 'robot' is not a role here (expected system, user, assistant)", error.Trim());
    }

    [Fact]
    public void A_template_that_raises_is_one_line_naming_the_example_the_template_and_its_message()
    {
        var dir = Path.Combine(Temp.FullName, "gemma");
        Directory.CreateDirectory(dir);
        File.Copy(Fixture("tokenizers", "qwen2", "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        File.Copy(Fixture("chat_templates", "gemma-2-it", "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        var data = Data("""
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
            """);
        // train --task sft encodes through the same SftEncoder; a model folder needs no weights for `data`.
        var (exit, _, error) = CliHarness.Run("data", "--model", dir, "--data", data);
        Assert.Equal(2, exit);
        // Gemma 2's template refuses a system turn with its own raise_exception.
        Assert.Equal($"error: {data}:2: {Path.Combine(dir, "tokenizer_config.json")}: the chat template failed: TemplateError: System role not supported",
            error.Trim());
    }
}
