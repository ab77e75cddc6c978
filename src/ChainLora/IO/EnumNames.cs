using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChainLora.IO;

/// <summary>
/// A second name a member is read by (never written): `--cola-variant best` reads as the variant
/// the measurements chose, and files record that variant's own name.
/// </summary>
[AttributeUsage(AttributeTargets.Field, AllowMultiple = true)]
public sealed class EnumAliasAttribute(string alias) : Attribute
{
    public string Alias { get; } = alias;
}

/// <summary>
/// The names an enum's values have in files and on the command line: each member's
/// [JsonStringEnumMemberName], else its name in lower case, and any [EnumAlias] it is also read by.
/// <see cref="Converter"/> writes and reads them in JSON, so a value reads the same in result
/// files, configs and options.
/// </summary>
public static class EnumNames
{
    public static string Name<T>(T value) where T : struct, Enum
    {
        var member = typeof(T).GetField(value.ToString())
            ?? throw new ArgumentException($"{value} is not a named value of {typeof(T).Name}");
        return member.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? member.Name.ToLowerInvariant();
    }

    public static IReadOnlyList<string> All<T>() where T : struct, Enum => Enum.GetValues<T>().Select(Name).ToList();

    /// <summary>Each alias and the value it reads as.</summary>
    public static IReadOnlyList<(string Alias, T Value)> Aliases<T>() where T : struct, Enum =>
        Enum.GetValues<T>().SelectMany(v => typeof(T).GetField(v.ToString())!.GetCustomAttributes<EnumAliasAttribute>().Select(a => (a.Alias, v))).ToList();

    /// <summary>Every name that parses: the names, then the aliases.</summary>
    public static IReadOnlyList<string> Accepted<T>() where T : struct, Enum => [.. All<T>(), .. Aliases<T>().Select(a => a.Alias)];

    public static bool TryParse<T>(string text, out T value) where T : struct, Enum
    {
        var wanted = text.Trim();
        foreach (var candidate in Enum.GetValues<T>())
            if (string.Equals(Name(candidate), wanted, StringComparison.OrdinalIgnoreCase))
            {
                value = candidate;
                return true;
            }
        foreach (var (alias, target) in Aliases<T>())
            if (string.Equals(alias, wanted, StringComparison.OrdinalIgnoreCase))
            {
                value = target;
                return true;
            }
        value = default;
        return false;
    }

    /// <summary>The value named <paramref name="text"/> (case-insensitive); an error naming <paramref name="what"/> and the choices otherwise.</summary>
    public static T Parse<T>(string text, string what) where T : struct, Enum
    {
        return TryParse<T>(text, out var value) ? value : throw new ArgumentException($"{what} '{text}': expected {Choices<T>()}");
    }

    /// <summary>The names as a sentence: "a, b or c", an alias as "best (= b)".</summary>
    public static string Choices<T>() where T : struct, Enum
    {
        var names = All<T>().Concat(Aliases<T>().Select(a => $"{a.Alias} (= {Name(a.Value)})")).ToList();
        return names.Count == 1 ? names[0] : string.Join(", ", names.Take(names.Count - 1)) + " or " + names[^1];
    }

    /// <summary>Enums in JSON by these names; an unknown name is a JsonException that lists the choices.</summary>
    public sealed class Converter : JsonConverterFactory
    {
        public override bool CanConvert(Type type) => type.IsEnum;

        public override JsonConverter CreateConverter(Type type, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(Of<>).MakeGenericType(type))!;

        sealed class Of<T> : JsonConverter<T> where T : struct, Enum
        {
            public override T Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options)
            {
                var text = reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new JsonException($"expected one of {Choices<T>()} as a string");
                return TryParse<T>(text, out var value) ? value : throw new JsonException($"'{text}' is not one of {Choices<T>()}");
            }

            public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(Name(value));
        }
    }
}
