using System.Text.Json;
using ChainLora.Tokenization;
using ChainLora.Tokenization.Jinja;

namespace ChainLora.Tests.Tokenization;

/// <summary>
/// Chat templates against transformers' rendering: the real templates of Llama 3 / 3.1 / 3.2,
/// Qwen2.5, Qwen3, Mistral v0.3, Gemma 2 / 3 and Phi-3 / 3.5 (Fixtures/chat_templates/*) rendered
/// by scripts/render_chat_templates.py with Python's jinja2 in transformers' environment, compared
/// byte for byte; and jinja2's semantics construct by construct (jinja-semantics.json).
/// </summary>
public sealed class ChatTemplateTests : TempFolderTest
{
    static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates");
    static readonly DateTime Clock = new(2026, 1, 15, 9, 30, 0); // the reference's strftime_now

    static JsonElement Renderings => Fixtures.Json(Path.Combine(Dir, "expected.json")).GetProperty("renderings");
    static JsonElement Conversations => Fixtures.Json(Path.Combine(Dir, "conversations.json"));

    public static TheoryData<int, string> RealTemplateCases()
    {
        var data = new TheoryData<int, string>();
        var i = 0;
        foreach (var r in Renderings.EnumerateArray())
            data.Add(i++, $"{r.GetProperty("template").GetString()} {r.GetProperty("conversation").GetString()} gen={r.GetProperty("add_generation_prompt").GetBoolean()}");
        return data;
    }

    [Theory]
    [MemberData(nameof(RealTemplateCases))]
    public void Real_templates_render_as_transformers_does(int index, string description)
    {
        var r = Renderings[index];
        var template = ChatTemplate.FromDirectory(Path.Combine(Dir, r.GetProperty("template").GetString()!));
        Assert.False(template.IsFallback);
        var messages = Conversations.GetProperty("conversations").GetProperty(r.GetProperty("conversation").GetString()!);
        var options = new ChatRenderOptions
        {
            Tools = r.GetProperty("tools").GetBoolean() ? [Conversations.GetProperty("weather_tool")] : null,
            Variables = r.GetProperty("kwargs").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value),
            Clock = () => Clock,
        };
        var addGenerationPrompt = r.GetProperty("add_generation_prompt").GetBoolean();
        if (r.TryGetProperty("rendered", out var expected))
        {
            Assert.Equal(expected.GetString(), template.Render(messages, addGenerationPrompt, options).Text);
            return;
        }
        var error = r.GetProperty("error").GetString()!;
        var e = Assert.Throws<ChatTemplateException>(() => template.Render(messages, addGenerationPrompt, options));
        Assert.Contains(template.Origin, e.Message);
        if (error.StartsWith("TemplateError: ", StringComparison.Ordinal))
            Assert.Equal(error["TemplateError: ".Length..], e.TemplateError);   // the template's own words
        else
            Assert.Null(e.TemplateError);                                        // a Python TypeError in the reference
        Assert.DoesNotContain('\n', e.Message);
        _ = description;
    }

    public static TheoryData<int> SnippetCases()
    {
        var data = new TheoryData<int>();
        var count = Fixtures.Json(Path.Combine(Dir, "jinja-semantics.json")).GetProperty("snippets").GetArrayLength();
        for (var i = 0; i < count; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(SnippetCases))]
    public void Jinja_semantics_match_python_jinja2(int index)
    {
        var s = Fixtures.Json(Path.Combine(Dir, "jinja-semantics.json")).GetProperty("snippets")[index];
        var source = s.GetProperty("template").GetString()!;
        var variables = s.GetProperty("variables").EnumerateObject().ToDictionary(p => p.Name, p => PyJson.FromJson(p.Value));
        var nodes = JinjaParser.Parse(source);
        if (s.TryGetProperty("rendered", out var expected))
        {
            Assert.Equal(expected.GetString(), JinjaRenderer.Render(nodes, variables, () => Clock).Text);
            return;
        }
        var e = Assert.Throws<TemplateRuntimeException>(() => JinjaRenderer.Render(nodes, variables, () => Clock));
        Assert.Equal(s.GetProperty("error").GetString(), e.PythonType);
        Assert.Equal(s.GetProperty("message").GetString(), e.PythonMessage);
    }

    [Fact]
    public void Chat_messages_render_like_their_json_form()
    {
        var template = ChatTemplate.FromDirectory(Path.Combine(Dir, "qwen2.5-instruct"));
        var messages = Conversations.GetProperty("conversations").GetProperty("system_multi_turn");
        var typed = messages.EnumerateArray().Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
        Assert.Equal(template.Render(messages, addGenerationPrompt: true).Text, template.Render(typed, addGenerationPrompt: true));
    }

    [Fact]
    public void Generation_blocks_report_the_spans_they_rendered()
    {
        var template = new ChatTemplate("{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}");
        var rendering = template.Render(JsonDocument.Parse("""[{"role": "user", "content": "q"}, {"role": "assistant", "content": "answer"}]""").RootElement, false);
        Assert.Equal("<user>q<assistant>answer", rendering.Text);
        Assert.Equal([(18, 24)], rendering.GenerationSpans);                 // "<user>q<assistant>" is 18 characters
        Assert.Equal("answer", rendering.Text[18..24]);
    }

    // --- where the template comes from

    [Fact]
    public void Chat_template_jinja_beside_the_config_wins_as_in_transformers()
    {
        File.WriteAllText(PathIn("tokenizer_config.json"), """{"eos_token": "</s>", "chat_template": "config {{ eos_token }}"}""");
        Assert.Equal("config </s>", ChatTemplate.FromDirectory(Temp.FullName).Render([], false));
        File.WriteAllText(PathIn("chat_template.jinja"), "file {{ eos_token }}\n");
        var template = ChatTemplate.FromDirectory(Temp.FullName);
        Assert.Equal("file </s>", template.Render([], false));                 // and its trailing newline dropped
        Assert.Equal(PathIn("chat_template.jinja"), template.Origin);
    }

    [Fact]
    public void A_list_of_named_templates_gives_the_default_one()
    {
        File.WriteAllText(PathIn("tokenizer_config.json"),
            """{"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "plain"}]}""");
        Assert.Equal("plain", ChatTemplate.FromDirectory(Temp.FullName).Render([], false));
        File.WriteAllText(PathIn("tokenizer_config.json"), """{"chat_template": [{"name": "tool_use", "template": "tools"}]}""");
        var e = Assert.Throws<InvalidDataException>(() => ChatTemplate.FromDirectory(Temp.FullName));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains("tool_use", e.Message);
    }

    [Fact]
    public void A_model_without_a_template_gets_chatml()
    {
        File.WriteAllText(PathIn("tokenizer_config.json"), """{"eos_token": "</s>"}""");
        var template = ChatTemplate.FromDirectory(Temp.FullName);
        Assert.True(template.IsFallback);
        Assert.Contains("ChatML", template.Origin);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", template.Render([new("user", "Hi")], addGenerationPrompt: true));
    }

    [Fact]
    public void A_template_that_cannot_be_parsed_is_named_with_its_line()
    {
        File.WriteAllText(PathIn("chat_template.jinja"), "{% for m in messages %}\n{{ m.content }\n{% endfor %}");
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromDirectory(Temp.FullName));
        Assert.Contains(PathIn("chat_template.jinja"), e.Message);
        Assert.Contains("line 2", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Unsupported_tags_are_refused_by_name()
    {
        var e = Assert.Throws<ChatTemplateException>(() => new ChatTemplate("{% include 'other.jinja' %}"));
        Assert.Contains("'include' is not supported", e.Message);
    }

    [Fact]
    public void Special_tokens_rendered_by_a_template_encode_as_single_ids()
    {
        // Llama 3's template on the Llama-3-layout fixture tokenizer: every header and <|eot_id|> is one id.
        var template = ChatTemplate.FromDirectory(Path.Combine(Dir, "llama-3-instruct"));
        var tokenizer = TokenizerJsonTextTokenizer.FromFile(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", "llama3", "tokenizer.json"));
        var text = template.Render([new("user", "Hi"), new("assistant", "Hello")], addGenerationPrompt: false);
        var ids = tokenizer.Encode(text, addBos: false);
        int Id(string token) => tokenizer.TryGetId(token, out var id) ? id : throw new KeyNotFoundException(token);
        Assert.Equal(Id("<|begin_of_text|>"), ids[0]);
        Assert.Equal(2, ids.Count(i => i == Id("<|eot_id|>")));
        Assert.Equal(2, ids.Count(i => i == Id("<|start_header_id|>")));
        var withoutSpecials = new[] { "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>" }
            .Aggregate(text, (t, special) => t.Replace(special, ""));
        Assert.Equal(withoutSpecials, tokenizer.Decode(ids));                // decoding drops the special tokens only
    }
}
