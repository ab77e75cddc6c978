// One row of a dataset file (a jsonl line, a tsv line, a parquet row, one question of a SQuAD or
// DROP document) with typed field access whose errors name the file, the line and the field.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ChainLora.Tasks;

public sealed class JsonRow
{
    readonly JsonObject node;
    readonly string prefix;

    /// <summary>"train.jsonl:12" or "data.parquet: row 3": where the row came from.</summary>
    public string Location { get; }

    public JsonRow(JsonObject node, string location, string prefix = "")
    {
        this.node = node;
        Location = location;
        this.prefix = prefix;
    }

    /// <summary>A copy of this row with <paramref name="fields"/> added (a question joined with its passage).</summary>
    public JsonRow With(Dictionary<string, string> fields)
    {
        var copy = (JsonObject)node.DeepClone();
        foreach (var (k, v) in fields) copy[k] = v;
        return new JsonRow(copy, Location, prefix);
    }

    /// <summary>The row's field names, in their order.</summary>
    public IEnumerable<string> Fields => node.Select(p => prefix + p.Key);

    public bool Has(string field) => node.TryGetPropertyValue(field, out var v) && v is not null;

    public string String(string field)
    {
        var v = Required(field);
        if (v is JsonValue value && value.TryGetValue<string>(out var s)) return s;
        throw Error(field, $"expected a string, found {Describe(v)}");
    }

    /// <summary>A string or a number, as text (DROP stores numbers either way).</summary>
    public string Text(string field)
    {
        var v = Required(field);
        if (v is JsonValue value)
        {
            if (value.TryGetValue<string>(out var s)) return s;
            if (value.GetValueKind() == JsonValueKind.Number) return value.ToJsonString();
        }
        throw Error(field, $"expected a string or a number, found {Describe(v)}");
    }

    /// <summary>true/false, 1/0, or "true"/"false"/"1"/"0" (tsv cells are text).</summary>
    public bool Bool(string field)
    {
        var v = Required(field);
        if (v is JsonValue value)
        {
            if (value.TryGetValue<bool>(out var b)) return b;
            if (value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<long>(out var i) && i is 0 or 1) return i == 1;
            if (value.TryGetValue<string>(out var s))
                switch (s.Trim().ToLowerInvariant())
                {
                    case "true" or "1": return true;
                    case "false" or "0": return false;
                }
        }
        throw Error(field, $"expected true or false (or 1/0), found {Describe(v)}");
    }

    /// <summary>
    /// A class label: one of <paramref name="names"/> (SuperGLUE writes "entailment"), or its index
    /// as a number or numeric text (Hugging Face exports and GLUE tsv files), or for two classes a bool.
    /// </summary>
    public int Label(string field, IReadOnlyList<string> names)
    {
        var v = Required(field);
        if (v is JsonValue value)
        {
            if (value.TryGetValue<string>(out var s))
            {
                for (var k = 0; k < names.Count; k++)
                    if (names[k].Equals(s.Trim(), StringComparison.OrdinalIgnoreCase)) return k;
                if (long.TryParse(s.Trim(), out var parsed) && parsed >= 0 && parsed < names.Count) return (int)parsed;
            }
            else if (value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<long>(out var i) && i >= 0 && i < names.Count)
                return (int)i;
            else if (names.Count == 2 && value.TryGetValue<bool>(out var b))
                return b ? 1 : 0;
        }
        throw Error(field, $"expected one of {string.Join(", ", names)} (or 0..{names.Count - 1}), found {Describe(v)}");
    }

    /// <summary>An integer in [min, max].</summary>
    public int Int(string field, int min, int max)
    {
        var v = Required(field);
        if (v is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<long>(out var i) && i >= min && i <= max)
            return (int)i;
        throw Error(field, $"expected an integer in [{min}, {max}], found {Describe(v)}");
    }

    public bool IsList(string field) => node.TryGetPropertyValue(field, out var v) && v is JsonArray;

    public JsonRow Object(string field)
    {
        var v = Required(field);
        return v is JsonObject o ? new JsonRow(o, Location, prefix + field + ".")
            : throw Error(field, $"expected an object, found {Describe(v)}");
    }

    public IReadOnlyList<JsonRow> Objects(string field)
    {
        var array = Array(field);
        return array.Select((item, i) => item is JsonObject o
                ? new JsonRow(o, Location, $"{prefix}{field}[{i}].")
                : throw Error($"{field}[{i}]", $"expected an object, found {Describe(item)}"))
            .ToList();
    }

    public IReadOnlyList<string> Strings(string field)
    {
        var array = Array(field);
        return array.Select((item, i) => item is JsonValue value && value.TryGetValue<string>(out var s)
                ? s
                : throw Error($"{field}[{i}]", $"expected a string, found {Describe(item)}"))
            .ToList();
    }

    JsonArray Array(string field)
    {
        var v = Required(field);
        return v as JsonArray ?? throw Error(field, $"expected a list, found {Describe(v)}");
    }

    JsonNode Required(string field) =>
        node.TryGetPropertyValue(field, out var v) && v is not null ? v : throw Error(field, "missing");

    /// <summary>An error naming this row's location and the (dotted) field.</summary>
    public InvalidDataException Error(string field, string problem) => new($"{Location}: field '{prefix}{field}': {problem}");

    static string Describe(JsonNode? v)
    {
        if (v is null) return "null";
        var text = v.ToJsonString();
        return text.Length <= 40 ? text : text[..37] + "...";
    }
}
