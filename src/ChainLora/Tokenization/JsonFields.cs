// Reading the fields of a tokenizer.json / tokenizer_config.json component, each error naming the
// field's path (such as "pre_tokenizer.pretokenizers[0].pattern") and the bad value.
using System.Text.Json;

namespace ChainLora.Tokenization;

static class JsonFields
{
    public static JsonElement Required(JsonElement e, string name, string path) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
            ? v
            : throw new InvalidDataException($"{path}.{name} is missing");

    public static JsonElement? Optional(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static string String(JsonElement e, string name, string path) =>
        Required(e, name, path) is { ValueKind: JsonValueKind.String } v
            ? v.GetString()!
            : throw new InvalidDataException($"{path}.{name} = {e.GetProperty(name).GetRawText()}: expected a string");

    public static string? OptionalString(JsonElement e, string name, string path) =>
        Optional(e, name) is not { } v ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw new InvalidDataException($"{path}.{name} = {v.GetRawText()}: expected a string");

    public static bool Bool(JsonElement e, string name, string path, bool absent) =>
        Optional(e, name) is not { } v ? absent
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
        : throw new InvalidDataException($"{path}.{name} = {v.GetRawText()}: expected true or false");

    public static int Int(JsonElement e, string name, string path) =>
        Required(e, name, path) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt32(out var i)
            ? i
            : throw new InvalidDataException($"{path}.{name} = {e.GetProperty(name).GetRawText()}: expected an integer");

    public static IEnumerable<(JsonElement Item, string Path)> Array(JsonElement e, string name, string path) =>
        Required(e, name, path) is { ValueKind: JsonValueKind.Array } v
            ? v.EnumerateArray().Select((item, i) => (item, $"{path}.{name}[{i}]"))
            : throw new InvalidDataException($"{path}.{name} = {e.GetProperty(name).GetRawText()}: expected a list");

    /// <summary>The component's "type", checked against the ones ChainLora implements.</summary>
    public static string Type(JsonElement e, string path, params string[] supported)
    {
        var type = String(e, "type", path);
        return supported.Contains(type)
            ? type
            : throw new InvalidDataException(
                $"{path}.type = '{type}' is not supported (supported: {string.Join(", ", supported)})");
    }
}
