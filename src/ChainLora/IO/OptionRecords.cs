// One way to write an options record down: a flat JSON object of snake_case fields, every setting
// of the record and of the records it holds, with no field copied by hand. A train run's
// result.json "hyperparameters" and its checkpoint fingerprint are both this object, so an option
// added to a record is recorded and checked on resume without touching either.
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ChainLora.IO;

/// <summary>Not a setting of the run (where it writes, how it is stopped, a derived view): left out of the record.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NotRecordedAttribute : Attribute;

/// <summary>Recorded only when it differs from a fresh record's value, so records written before it existed stay as they were.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RecordedWhenSetAttribute : Attribute;

/// <summary>Recorded under this name instead of the property's snake_case name.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RecordedAsAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

/// <summary>A record of settings whose fields are recorded beside the holder's own (no nesting).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RecordedFlatAttribute : Attribute;

public static class OptionRecords
{
    /// <summary>Values as result.json writes them: enum names, NaN and infinities as null.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonLines.NonFiniteAsNull(), new EnumNames.Converter() },
    };

    /// <summary>
    /// Every public setting of <paramref name="record"/> in declaration order, the fields of
    /// <see cref="RecordedFlatAttribute"/> records in place of the record; a name written twice throws.
    /// </summary>
    public static JsonObject Flatten(object record)
    {
        var flat = new JsonObject();
        Add(flat, record);
        return flat;
    }

    static void Add(JsonObject flat, object record)
    {
        var type = record.GetType();
        object? fresh = null;
        foreach (var property in Settings(type))
        {
            var value = property.GetValue(record);
            if (property.IsDefined(typeof(RecordedFlatAttribute)))
            {
                if (value is not null) Add(flat, value);
                continue;
            }
            if (property.IsDefined(typeof(RecordedWhenSetAttribute)))
            {
                fresh ??= Activator.CreateInstance(type);
                if (JsonSerializer.Serialize(value, property.PropertyType, Json) == JsonSerializer.Serialize(property.GetValue(fresh), property.PropertyType, Json))
                    continue;
            }
            var name = NameOf(property);
            if (flat.ContainsKey(name)) throw new InvalidOperationException($"{type.Name}.{property.Name}: the field '{name}' is recorded twice");
            flat[name] = JsonSerializer.SerializeToNode(value, property.PropertyType, Json);
        }
    }

    /// <summary>
    /// <paramref name="record"/> with the setting <see cref="Flatten"/> writes as <paramref name="name"/> read from
    /// <paramref name="value"/> (in a held record too); false when no setting has that name.
    /// </summary>
    public static bool TryWith<T>(T record, string name, JsonNode? value, out T updated) where T : class
    {
        var found = TryWith((object)record, name, value, out var changed);
        updated = (T)changed;
        return found;
    }

    static bool TryWith(object record, string name, JsonNode? value, out object updated)
    {
        updated = record;
        foreach (var property in Settings(record.GetType()))
        {
            if (property.IsDefined(typeof(RecordedFlatAttribute)))
            {
                if (property.GetValue(record) is not { } held || !TryWith(held, name, value, out var heldUpdated)) continue;
                updated = Clone(record);
                property.SetValue(updated, heldUpdated);
                return true;
            }
            if (NameOf(property) != name) continue;
            updated = Clone(record);
            object? read;
            try
            {
                read = value.Deserialize(property.PropertyType, Json);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NotSupportedException)
            {
                throw new ArgumentException($"{value?.ToJsonString() ?? "null"} is not {Describe(property.PropertyType)}");
            }
            property.SetValue(updated, read);
            return true;
        }
        return false;
    }

    /// <summary>What a value of <paramref name="type"/> is written as, for an error.</summary>
    static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum) return "one of " + string.Join(", ", Enum.GetValues(type).Cast<object>().Select(v => JsonSerializer.Serialize(v, type, Json)));
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(int) || type == typeof(long)) return "a whole number";
        if (type == typeof(double) || type == typeof(float)) return "a number";
        if (type == typeof(string)) return "a string";
        return type.IsGenericType && type.GetGenericArguments() is [var item] ? $"a list of {Describe(item)}s" : $"a {type.Name}";
    }

    /// <summary>A copy of a record (its compiler-made clone), whose init-only settings can then be set.</summary>
    static object Clone(object record) =>
        record.GetType().GetMethod("<Clone>$")?.Invoke(record, null) ?? throw new InvalidOperationException($"{record.GetType().Name} is not a record");

    /// <summary>The properties of <paramref name="type"/> that are settings: public, init-settable, not <see cref="NotRecordedAttribute"/>.</summary>
    static IEnumerable<PropertyInfo> Settings(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p =>
            p.GetIndexParameters().Length == 0 && p.GetMethod is not null && p.SetMethod is not null && !p.IsDefined(typeof(NotRecordedAttribute)));

    static string NameOf(PropertyInfo property) =>
        property.GetCustomAttribute<RecordedAsAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);

    /// <summary><paramref name="flat"/> with the keys of <paramref name="order"/> first, in that order, then the rest as they came.</summary>
    public static JsonObject Ordered(JsonObject flat, IEnumerable<string> order)
    {
        var ordered = new JsonObject();
        foreach (var key in order.Where(flat.ContainsKey).Concat(flat.Select(p => p.Key)).Distinct().ToList())
            ordered[key] = flat[key]?.DeepClone();
        return ordered;
    }
}
