using System.Text.Json;

namespace ChainLora.Models;

/// <summary>Reads Hugging Face <c>config.json</c> files into the immutable config records.</summary>
public static class ConfigJson
{
    static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowReadingFromString,
        WriteIndented = true,
    };

    /// <summary>The "model_type" field of a config.json ("llama", "opt", ...).</summary>
    public static string ModelType(string path)
    {
        using var doc = Parse(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object, found {doc.RootElement.ValueKind}");
        return doc.RootElement.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : throw new InvalidDataException($"{path}: field 'model_type' is missing");
    }

    public static T Read<T>(string path) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Options)
                ?? throw new InvalidDataException($"{path}: empty config");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid config.json ({e.Path}: {e.Message})", e);
        }
    }

    /// <summary><see cref="Read{T}"/> then <paramref name="validate"/>; a bad value is an error naming the file and the field.</summary>
    public static T ReadValid<T>(string path, Func<T, T> validate) where T : class
    {
        var config = Read<T>(path);
        try
        {
            return validate(config);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    public static string Write<T>(T config) => JsonSerializer.Serialize(config, Options);

    static JsonDocument Parse(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config.json not found: {path}", path);
        try { return JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }

    internal static void Require(bool ok, string field, object? value, string why)
    {
        if (!ok) throw new ArgumentException($"config field '{field}' = {value ?? "null"}: {why}");
    }
}
