// A model's chat template rendered as transformers' apply_chat_template(messages,
// add_generation_prompt=..., tokenize=False) renders it: the Jinja source from
// tokenizer_config.json or chat_template.jinja, jinja2's semantics (Jinja/), and the variables
// transformers passes: messages, tools, documents, add_generation_prompt, the special tokens
// (bos_token, eos_token, unk_token, pad_token) and any extra keyword (enable_thinking, ...).
// docs/CHAT_TEMPLATES.md says why the engine is our own and what the fallback is.
using System.Text.Json;
using ChainLora.Tokenization.Jinja;

namespace ChainLora.Tokenization;

/// <summary>One turn of a conversation: role "system", "user", "assistant" (or "tool") and its text.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>What a template may read besides the messages.</summary>
public sealed record ChatRenderOptions
{
    /// <summary>Tool schemas (OpenAI / transformers JSON form); null renders as transformers' tools=None.</summary>
    public IReadOnlyList<JsonElement>? Tools { get; init; }

    /// <summary>Extra template variables (apply_chat_template's **kwargs), e.g. enable_thinking = false:
    /// null, bool, string, int, long, double or a JsonElement.</summary>
    public IReadOnlyDictionary<string, object?>? Variables { get; init; }

    /// <summary>The clock strftime_now reads (Llama 3.2 prints today's date); the local time when null.</summary>
    public Func<DateTime>? Clock { get; init; }
}

/// <summary>The rendered text and, for templates with {% generation %} blocks, the character spans they produced.</summary>
public sealed record ChatRendering(string Text, IReadOnlyList<(int Start, int End)> GenerationSpans);

/// <summary>
/// A template that cannot be parsed, or that raised (raise_exception) or failed while rendering a
/// conversation: one line naming the template. A FormatException, so the CLI reports it as bad input.
/// </summary>
public sealed class ChatTemplateException(string message, string? templateError = null, Exception? inner = null)
    : FormatException(message, inner)
{
    /// <summary>The message of the template's own raise_exception(...), when it raised one.</summary>
    public string? TemplateError { get; } = templateError;
}

public sealed class ChatTemplate
{
    /// <summary>
    /// ChatML, the template transformers used for every model without one until v4.43 (then its
    /// default_chat_template) and the format TRL's setup_chat_format adds: what ChainLora renders
    /// when a model ships no template.
    /// </summary>
    public const string ChatMLFallback =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    readonly List<Node> template;
    readonly IReadOnlyDictionary<string, string> specialTokens;

    /// <summary>The Jinja source.</summary>
    public string Source { get; }

    /// <summary>Where it came from: a file path, or a description such as "ChatML fallback".</summary>
    public string Origin { get; }

    /// <summary>True when the model has no template and <see cref="ChatMLFallback"/> is used.</summary>
    public bool IsFallback { get; }

    /// <summary>
    /// Parses <paramref name="source"/>. <paramref name="specialTokens"/> are the variables
    /// transformers adds from the tokenizer's special tokens (bos_token, eos_token, ...).
    /// </summary>
    public ChatTemplate(string source, IReadOnlyDictionary<string, string>? specialTokens = null, string origin = "chat template")
        : this(source, specialTokens, origin, isFallback: false)
    {
    }

    ChatTemplate(string source, IReadOnlyDictionary<string, string>? specialTokens, string origin, bool isFallback)
    {
        Source = source;
        Origin = origin;
        IsFallback = isFallback;
        this.specialTokens = specialTokens ?? new Dictionary<string, string>();
        try
        {
            template = JinjaParser.Parse(source);
        }
        catch (TemplateSyntaxException e)
        {
            throw new ChatTemplateException($"{origin}: the chat template cannot be parsed: {e.Message}", inner: e);
        }
    }

    /// <summary>
    /// The template of a model folder: chat_template.jinja, else tokenizer_config.json's
    /// chat_template; with neither, <see cref="ChatMLFallback"/> (<see cref="IsFallback"/>).
    /// </summary>
    public static ChatTemplate FromDirectory(string dir) => FromConfig(TokenizerConfig.Read(dir), Path.Combine(dir, TokenizerConfig.FileName));

    /// <summary>The template <paramref name="config"/> holds (or the fallback), with its special tokens.</summary>
    public static ChatTemplate FromConfig(TokenizerConfig config, string configPath)
    {
        var specials = new Dictionary<string, string>();
        foreach (var (name, value) in new[] { ("bos_token", config.BosToken), ("eos_token", config.EosToken), ("unk_token", config.UnkToken), ("pad_token", config.PadToken) })
            if (value is not null) specials[name] = value;
        return config.ChatTemplate is { } source
            ? new ChatTemplate(source, specials, config.ChatTemplateSource ?? configPath, isFallback: false)
            : new ChatTemplate(ChatMLFallback, specials, $"ChatML fallback (no chat_template in {configPath})", isFallback: true);
    }

    /// <summary>apply_chat_template(messages, add_generation_prompt=..., tokenize=False).</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, ChatRenderOptions? options = null) =>
        Render(messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            addGenerationPrompt, options).Text;

    /// <summary>
    /// The same for messages given as JSON objects (a JSON array), which may carry what some
    /// templates read besides role and content: tool_calls, reasoning_content, content parts.
    /// </summary>
    public ChatRendering Render(JsonElement messages, bool addGenerationPrompt, ChatRenderOptions? options = null) =>
        messages.ValueKind == JsonValueKind.Array
            ? Render(messages.EnumerateArray().Select(PyJson.FromJson).ToList(), addGenerationPrompt, options)
            : throw new ArgumentException($"messages must be a JSON array, not {messages.ValueKind}", nameof(messages));

    ChatRendering Render(List<object?> messages, bool addGenerationPrompt, ChatRenderOptions? options)
    {
        var context = new Dictionary<string, object?>();
        foreach (var (name, value) in specialTokens) context[name] = value;
        context["messages"] = messages;
        context["tools"] = options?.Tools is { } tools ? tools.Select(PyJson.FromJson).ToList() : null;
        context["documents"] = null;
        context["add_generation_prompt"] = addGenerationPrompt;
        foreach (var (name, value) in options?.Variables ?? new Dictionary<string, object?>())
            context[name] = value switch
            {
                null or bool or string or long or double => value,
                int i => (long)i,
                float f => (double)f,
                JsonElement e => PyJson.FromJson(e),
                _ => throw new ArgumentException($"template variable '{name}' has type {value.GetType().Name}; use bool, string, a number or a JsonElement"),
            };
        try
        {
            var output = JinjaRenderer.Render(template, context, options?.Clock ?? (() => DateTime.Now));
            return new ChatRendering(output.Text, output.GenerationSpans);
        }
        catch (TemplateRuntimeException e)
        {
            throw new ChatTemplateException($"{Origin}: the chat template failed: {e.Message}",
                e.PythonType == "TemplateError" ? e.PythonMessage : null, e);
        }
    }
}
