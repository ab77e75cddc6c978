// What transformers reads from a model folder beside the tokenizer files: tokenizer_config.json's
// special tokens, add_bos_token / add_eos_token and tokenizer_class, and its chat template (or
// chat_template.jinja, where transformers >= 4.43 saves it).
using System.Text.Json;

namespace ChainLora.Tokenization;

/// <summary>The fields of <c>tokenizer_config.json</c> ChainLora uses; all optional.</summary>
public sealed record TokenizerConfig(
    string? BosToken = null,
    string? EosToken = null,
    string? PadToken = null,
    string? UnkToken = null,
    bool? AddBosToken = null,
    bool? AddEosToken = null,
    string? TokenizerClass = null,
    string? ChatTemplate = null,
    string? ChatTemplateSource = null)
{
    public const string FileName = "tokenizer_config.json";
    public const string ChatTemplateFileName = "chat_template.jinja";

    /// <summary>
    /// The tokenizer_config.json of <paramref name="dir"/> (an empty config when absent). The chat
    /// template is the text of chat_template.jinja when the folder has one (transformers >= 4.47
    /// reads that file and lets it replace the config's), else the config's "chat_template": a
    /// string, or a list of {name, template} of which "default" is taken.
    /// </summary>
    public static TokenizerConfig Read(string dir)
    {
        var path = Path.Combine(dir, FileName);
        var config = File.Exists(path) ? Parse(path) : new TokenizerConfig();
        var jinja = Path.Combine(dir, ChatTemplateFileName);
        return File.Exists(jinja)
            ? config with { ChatTemplate = File.ReadAllText(jinja), ChatTemplateSource = jinja }
            : config;
    }

    static TokenizerConfig Parse(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"expected a JSON object, found {root.ValueKind}");
            var template = ChatTemplateOf(root);
            return new TokenizerConfig(
                Token(root, "bos_token"), Token(root, "eos_token"), Token(root, "pad_token"), Token(root, "unk_token"),
                Flag(root, "add_bos_token"), Flag(root, "add_eos_token"),
                JsonFields.OptionalString(root, "tokenizer_class", "tokenizer_config"),
                template, template is null ? null : path);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw new InvalidDataException($"'{path}': {e.Message}", e);
        }
    }

    /// <summary>A special token: a string, or an AddedToken object with "content".</summary>
    static string? Token(JsonElement root, string name) => JsonFields.Optional(root, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        { ValueKind: JsonValueKind.Object } v => JsonFields.String(v, "content", name),
        var v => throw new InvalidDataException($"field '{name}' = {v.Value.GetRawText()}: expected a token string or an object with \"content\""),
    };

    static bool? Flag(JsonElement root, string name) =>
        JsonFields.Optional(root, name) is null ? null : JsonFields.Bool(root, name, "tokenizer_config", false);

    static string? ChatTemplateOf(JsonElement root)
    {
        switch (JsonFields.Optional(root, "chat_template"))
        {
            case null:
                return null;
            case { ValueKind: JsonValueKind.String } s:
                return s.GetString();
            case { ValueKind: JsonValueKind.Array } list:
                var named = list.EnumerateArray().Select((t, i) =>
                    (Name: JsonFields.String(t, "name", $"chat_template[{i}]"), Template: JsonFields.String(t, "template", $"chat_template[{i}]"))).ToList();
                return named.FirstOrDefault(t => t.Name == "default").Template
                    ?? throw new InvalidDataException(
                        $"field 'chat_template' lists templates named {string.Join(", ", named.Select(t => t.Name))} but none named 'default'");
            case var other:
                throw new InvalidDataException($"field 'chat_template' = {other.Value.GetRawText()}: expected a string or a list of {{name, template}}");
        }
    }
}
