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
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetMethod is null || property.IsDefined(typeof(NotRecordedAttribute))) continue;
            // Computed properties (no init accessor) are views of the settings, not settings.
            if (property.SetMethod is null) continue;
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
            var name = property.GetCustomAttribute<RecordedAsAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);
            if (flat.ContainsKey(name)) throw new InvalidOperationException($"{type.Name}.{property.Name}: the field '{name}' is recorded twice");
            flat[name] = JsonSerializer.SerializeToNode(value, property.PropertyType, Json);
        }
    }

    /// <summary><paramref name="flat"/> with the keys of <paramref name="order"/> first, in that order, then the rest as they came.</summary>
    public static JsonObject Ordered(JsonObject flat, IEnumerable<string> order)
    {
        var ordered = new JsonObject();
        foreach (var key in order.Where(flat.ContainsKey).Concat(flat.Select(p => p.Key)).Distinct().ToList())
            ordered[key] = flat[key]?.DeepClone();
        return ordered;
    }
}
