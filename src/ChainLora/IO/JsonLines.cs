using System.Text.Json;
using System.Text.Json.Serialization;

namespace ChainLora.IO;

/// <summary>
/// Compact JSON as ChainLora prints and logs it: JSON has no NaN or infinity, so a diverged loss or
/// an undefined metric is written as null (and read back as NaN); enums by their <see cref="EnumNames"/> names.
/// </summary>
public static class JsonLines
{
    public static readonly JsonSerializerOptions Options = new()
    {
        Converters = { new NonFiniteAsNull(), new EnumNames.Converter() },
    };

    /// <summary>One line of JSON with the property names as given.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    public sealed class NonFiniteAsNull : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }
}
