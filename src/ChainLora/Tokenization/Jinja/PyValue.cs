// Template values with Python's semantics, because transformers renders chat templates with
// Python's jinja2: None, bool, int (long), float (double), str, list, tuple, dict (insertion
// ordered), jinja2's namespace and Undefined, and callables. str() / repr() / truthiness /
// equality / ordering / arithmetic follow CPython, with CPython's error messages where a
// template can reach them.
using System.Globalization;
using System.Text;

namespace ChainLora.Tokenization.Jinja;

/// <summary>A Python tuple (a list that prints with parentheses).</summary>
sealed class PyTuple(IEnumerable<object?> items) : List<object?>(items);

/// <summary>jinja2's namespace(): the one object a template may assign attributes to.</summary>
sealed class PyNamespace : Dictionary<string, object?>;

/// <summary>jinja2's default Undefined: prints as "", is false, and fails when used further.</summary>
sealed class Undefined(string message)
{
    /// <summary>The UndefinedError message jinja2 gives when this value is used: "'x' is undefined".</summary>
    public string Message { get; } = message;
}

/// <summary>A function or bound method a template can call: positional and keyword arguments.</summary>
sealed class PyCallable(string name, Func<List<object?>, Dictionary<string, object?>, object?> call)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => call(args, kwargs);
}

/// <summary>A Python-level error raised while rendering (TypeError, UndefinedError, TemplateError...).</summary>
public sealed class TemplateRuntimeException(string pythonType, string message) : Exception($"{pythonType}: {message}")
{
    /// <summary>The Python exception type transformers would raise: TemplateError for raise_exception.</summary>
    public string PythonType { get; } = pythonType;
    public string PythonMessage { get; } = message;
}

static class Py
{
    public static TemplateRuntimeException TypeError(string message) => new("TypeError", message);
    public static TemplateRuntimeException UndefinedError(string message) => new("UndefinedError", message);

    public static object? Check(object? value) => value is Undefined u ? throw UndefinedError(u.Message) : value;

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        PyTuple => "tuple",
        List<object?> => "list",
        PyNamespace => "Namespace",
        Dictionary<string, object?> => "dict",
        Undefined => "Undefined",
        PyCallable => "builtin_function_or_method",
        _ => v.GetType().Name,
    };

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    /// <summary>str(v), what {{ v }} prints.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>repr(v).</summary>
    public static string Repr(object? v) => v switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => StringRepr(s),
        PyTuple t => t.Count == 1 ? $"({Repr(t[0])},)" : "(" + string.Join(", ", t.Select(Repr)) + ")",
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        PyNamespace n => "<Namespace " + string.Join(", ", n.Select(kv => $"{kv.Key}={Repr(kv.Value)}")) + ">",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(kv => $"{StringRepr(kv.Key)}: {Repr(kv.Value)}")) + "}",
        Undefined => "",
        PyCallable c => $"<built-in method {c.Name}>",
        _ => v.ToString() ?? "",
    };

    /// <summary>CPython's float repr: the shortest round-trip digits, fixed notation for exponents -4..15.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // .NET's "R" gives the same shortest digits as CPython; only the layout differs.
        var shortest = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        var e = shortest.IndexOf('E');
        var mantissa = e >= 0 ? shortest[..e] : shortest;
        var exp10 = e >= 0 ? int.Parse(shortest[(e + 1)..], CultureInfo.InvariantCulture) : 0;
        var dot = mantissa.IndexOf('.');
        var whole = dot >= 0 ? mantissa.Remove(dot, 1) : mantissa;
        var pointAt = (dot >= 0 ? dot : mantissa.Length) + exp10; // digits before the decimal point
        var lead = whole.Length - whole.TrimStart('0').Length;
        var digits = whole.Trim('0');
        var exp = pointAt - lead - 1;                               // exponent of the first digit
        string text;
        if (exp is >= -4 and < 16)
            text = exp >= 0
                ? digits.PadRight(exp + 1, '0')[..(exp + 1)] + "." + (digits.Length > exp + 1 ? digits[(exp + 1)..] : "0")
                : "0." + new string('0', -exp - 1) + digits;
        else
            text = (digits.Length > 1 ? digits[0] + "." + digits[1..] : digits) + "e" + (exp < 0 ? "-" : "+")
                + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        return d < 0 ? "-" + text : text;
    }

    /// <summary>CPython's str repr: single quotes unless the text has ' and no ".</summary>
    public static string StringRepr(string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(quote);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote) sb.Append('\\').Append(c);
                    else if (char.IsSurrogatePair(s, i))
                    {
                        sb.Append(s, i, 2);
                        i++;
                    }
                    else if (IsPrintable(c)) sb.Append(c);
                    else if (c < 0x100) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
            }
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>Python's str.isprintable for one BMP character: not a control, format, separator (but space) or unassigned.</summary>
    static bool IsPrintable(char c) => c == ' ' || CharUnicodeInfo.GetUnicodeCategory(c) switch
    {
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.OtherNotAssigned
            or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator
            or UnicodeCategory.PrivateUse => false,
        _ => true,
    };

    public static new bool Equals(object? a, object? b) => (a, b) switch
    {
        (Undefined, Undefined) => true,
        (Undefined, _) or (_, Undefined) => false,
        (null, null) => true,
        (null, _) or (_, null) => false,
        _ when IsNumber(a) && IsNumber(b) => Number(a!) == Number(b!),
        (string x, string y) => x == y,
        (List<object?> x, List<object?> y) => x is PyTuple == y is PyTuple && x.Count == y.Count && x.Zip(y).All(p => Equals(p.First, p.Second)),
        (Dictionary<string, object?> x, Dictionary<string, object?> y) =>
            x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var v) && Equals(kv.Value, v)),
        _ => ReferenceEquals(a, b),
    };

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double Number(object v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw TypeError($"must be real number, not {TypeName(v)}"),
    };

    /// <summary>a &lt; b and friends: numbers with numbers, str with str, lists element-wise.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        Check(a);
        Check(b);
        if (IsNumber(a) && IsNumber(b)) return Number(a!).CompareTo(Number(b!));
        if (a is string x && b is string y) return string.CompareOrdinal(x, y) switch { < 0 => -1, > 0 => 1, _ => 0 };
        if (a is List<object?> la && b is List<object?> lb && a is PyTuple == b is PyTuple)
        {
            for (var i = 0; i < Math.Min(la.Count, lb.Count); i++)
                if (!Equals(la[i], lb[i])) return Compare(la[i], lb[i], op);
            return la.Count.CompareTo(lb.Count);
        }
        throw TypeError($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    /// <summary>The `in` operator.</summary>
    public static bool Contains(object? container, object? item) => Check(container) switch
    {
        string s => Check(item) is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : throw TypeError($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        List<object?> l => l.Any(e => Equals(e, item)),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        var c => throw TypeError($"argument of type '{TypeName(c)}' is not iterable"),
    };

    /// <summary>Iterating: a list's items, a dict's keys, a string's characters; Undefined is empty.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        Undefined => [],
        List<object?> l => [.. l],
        Dictionary<string, object?> d => [.. d.Keys],
        string s => Chars(s).Select(c => (object?)c).ToList(),
        _ => throw TypeError($"'{TypeName(v)}' object is not iterable"),
    };

    /// <summary>The characters (code points) of a string, as Python iterates it.</summary>
    public static List<string> Chars(string s)
    {
        var list = new List<string>(s.Length);
        for (var i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1)
            list.Add(s.Substring(i, char.IsSurrogatePair(s, i) ? 2 : 1));
        return list;
    }

    public static long Length(object? v) => v switch
    {
        Undefined => 0,
        string s => Chars(s).Count,
        List<object?> l => l.Count,
        Dictionary<string, object?> d => d.Count,
        _ => throw TypeError($"object of type '{TypeName(v)}' has no len()"),
    };

    public static object Add(object? a, object? b)
    {
        Check(a);
        Check(b);
        return (a, b) switch
        {
            (long x, long y) => x + y,
            _ when IsNumber(a) && IsNumber(b) => a is double || b is double ? Number(a!) + Number(b!) : (object)(long)(Number(a!) + Number(b!)),
            (string x, string y) => x + y,
            (string, _) => throw TypeError($"can only concatenate str (not \"{TypeName(b)}\") to str"),
            (PyTuple x, PyTuple y) => new PyTuple([.. x, .. y]),
            (List<object?> x, List<object?> y) when x is not PyTuple && y is not PyTuple => new List<object?>([.. x, .. y]),
            (List<object?> x, _) => throw TypeError($"can only concatenate {TypeName(x)} (not \"{TypeName(b)}\") to {TypeName(x)}"),
            _ => throw TypeError($"unsupported operand type(s) for +: '{TypeName(a)}' and '{TypeName(b)}'"),
        };
    }

    /// <summary>A sequence repeated <paramref name="times"/>; refused past 100 M items (CPython would run out of memory).</summary>
    static int Repeats(long times, int length) => times <= 0 ? 0
        : times * (double)length <= 100_000_000 ? (int)times
        : throw new TemplateRuntimeException("MemoryError", $"a sequence of {length} repeated {times} times");

    public static object Arithmetic(string op, object? a, object? b)
    {
        Check(a);
        Check(b);
        if (op == "*")
        {
            if (a is string s && b is long n) return string.Concat(Enumerable.Repeat(s, Repeats(n, s.Length)));
            if (a is long m && b is string t) return string.Concat(Enumerable.Repeat(t, Repeats(m, t.Length)));
            if (a is List<object?> l && b is long k) return new List<object?>(Enumerable.Range(0, Repeats(k, l.Count)).SelectMany(_ => l));
        }
        if (!IsNumber(a) || !IsNumber(b))
            throw TypeError($"unsupported operand type(s) for {op}: '{TypeName(a)}' and '{TypeName(b)}'");
        var ints = a is not double && b is not double;
        var (x, y) = (Number(a!), Number(b!));
        if (op is "/" or "//" or "%" && y == 0)
            throw new TemplateRuntimeException("ZeroDivisionError", ints && op != "/" ? "integer division or modulo by zero" : "division by zero");
        // Boxed per arm: a switch over long and double would widen every int to float.
        return op switch
        {
            "-" => ints ? (object)((long)x - (long)y) : x - y,
            "*" => ints ? (object)((long)x * (long)y) : x * y,
            "/" => x / y,
            "//" => ints ? (object)(long)Math.Floor(x / y) : Math.Floor(x / y),
            "%" => ints ? (object)(long)(x - y * Math.Floor(x / y)) : x - y * Math.Floor(x / y),
            "**" => ints && y >= 0 ? (object)(long)Math.Pow(x, y) : Math.Pow(x, y),
            _ => throw new InvalidOperationException(op),
        };
    }
}
