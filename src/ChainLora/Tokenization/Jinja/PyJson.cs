// Python's json.dumps over template values, for the tojson filter as transformers defines it:
// json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys).
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ChainLora.Tokenization.Jinja;

static class PyJson
{
    /// <param name="indent">null: one line; a number of spaces or a string per level otherwise.</param>
    /// <param name="separators">(item, key) separators; Python's default is (", ", ": ") on one line and (",", ": ") indented.</param>
    public static string Dumps(object? value, bool ensureAscii = false, string? indent = null,
        (string Item, string Key)? separators = null, bool sortKeys = false)
    {
        var (item, key) = separators ?? (indent is null ? (", ", ": ") : (",", ": "));
        var sb = new StringBuilder();
        Write(value, 0);
        return sb.ToString();

        void Write(object? v, int depth)
        {
            switch (v)
            {
                case null: sb.Append("null"); break;
                case bool b: sb.Append(b ? "true" : "false"); break;
                case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
                case double d:
                    sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : Py.FloatRepr(d));
                    break;
                case string s: String(s); break;
                case List<object?> list: Container('[', ']', list.Count, i => Write(list[i], depth + 1), depth); break;
                case PyNamespace or Undefined or PyCallable:
                    throw Py.TypeError($"Object of type {Py.TypeName(v)} is not JSON serializable");
                case Dictionary<string, object?> dict:
                    var pairs = sortKeys ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList() : dict.ToList();
                    Container('{', '}', pairs.Count, i =>
                    {
                        String(pairs[i].Key);
                        sb.Append(key);
                        Write(pairs[i].Value, depth + 1);
                    }, depth);
                    break;
                default: throw Py.TypeError($"Object of type {Py.TypeName(v)} is not JSON serializable");
            }
        }

        void Container(char open, char close, int count, Action<int> writeAt, int depth)
        {
            if (count == 0)
            {
                sb.Append(open).Append(close);
                return;
            }
            sb.Append(open);
            for (var i = 0; i < count; i++)
            {
                if (i > 0) sb.Append(item);
                if (indent is not null) sb.Append('\n').Append(string.Concat(Enumerable.Repeat(indent, depth + 1)));
                writeAt(i);
            }
            if (indent is not null) sb.Append('\n').Append(string.Concat(Enumerable.Repeat(indent, depth)));
            sb.Append(close);
        }

        void String(string s)
        {
            sb.Append('"');
            foreach (var c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20 || ensureAscii && c > 0x7E)
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }
    }

    /// <summary>A JSON document as template values (what json.loads gives): ints stay ints, other numbers are floats.</summary>
    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) && !e.GetRawText().Contains('.') && !e.GetRawText().Contains('e')
            && !e.GetRawText().Contains('E') ? (object)l : e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => e.EnumerateObject().Aggregate(new Dictionary<string, object?>(), (d, p) =>
        {
            d[p.Name] = FromJson(p.Value);
            return d;
        }),
        _ => throw new ArgumentException($"unexpected JSON value kind {e.ValueKind}"),
    };
}
