// Reading JSON: the one place where text that is not JSON, or not the shape a record expects,
// becomes an InvalidDataException of one line naming the file (and, where known, its line and field).
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ChainLora.IO;

public static class JsonFile
{
    /// <summary>The document in <paramref name="path"/>; text that is not JSON: "PATH: not valid JSON (why)".</summary>
    public static JsonDocument Parse(string path, JsonDocumentOptions options = default) =>
        Wrap(path, () => JsonDocument.Parse(File.ReadAllText(path), options));

    /// <summary>The document in <paramref name="path"/> as a node (null for the literal null); errors as <see cref="Parse"/>.</summary>
    public static JsonNode? ParseNode(string path, JsonDocumentOptions options = default) =>
        Wrap(path, () => JsonNode.Parse(File.ReadAllText(path), documentOptions: options));

    /// <summary>
    /// <paramref name="path"/> read as a <typeparamref name="T"/>: not JSON or the wrong shape gives
    /// "PATH: not valid WHAT (field: why)", the literal null "PATH: empty".
    /// </summary>
    public static T Read<T>(string path, JsonSerializerOptions? options = null, string what = "JSON") =>
        Deserialize<T>(File.ReadAllText(path), path, options, what);

    /// <summary>As <see cref="Read{T}"/>, for <paramref name="json"/> already read from <paramref name="source"/>.</summary>
    public static T Deserialize<T>(string json, string source, JsonSerializerOptions? options = null, string what = "JSON") =>
        Wrap(source, () => JsonSerializer.Deserialize<T>(json, options) ?? throw new InvalidDataException($"{source}: empty"), what);

    static T Wrap<T>(string source, Func<T> read, string what = "JSON")
    {
        try
        {
            return read();
        }
        catch (JsonException e)
        {
            var at = e.Path is { Length: > 1 } field ? $"{field}: " : "";
            throw new InvalidDataException($"{source}: not valid {what} ({at}{e.Message})", e);
        }
    }
}
