// What a chat template can call: jinja2's filters and tests (jinja2/filters.py, tests.py), the
// str / dict methods templates use (strip, split, startswith, items, get, ...), jinja2's
// globals (range, dict, namespace) and transformers' (raise_exception, strftime_now), with
// jinja2's sandboxed attribute and item lookup. Each behaves as in CPython + jinja2 3.1.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace ChainLora.Tokenization.Jinja;

static partial class JinjaBuiltins
{
    public static IEnumerable<(string, object?)> Globals(Func<DateTime> clock) =>
    [
        ("raise_exception", new PyCallable("raise_exception", (args, _) =>
            throw new TemplateRuntimeException("TemplateError", args.Count > 0 ? Py.Str(args[0]) : ""))),
        ("strftime_now", new PyCallable("strftime_now", (args, _) => Strftime(clock(), Py.Str(Arg(args, 0, "format"))))),
        ("range", new PyCallable("range", (args, _) => Range(args))),
        ("dict", new PyCallable("dict", (_, kwargs) => new Dictionary<string, object?>(kwargs))),
        ("namespace", new PyCallable("namespace", (args, kwargs) =>
        {
            var ns = new PyNamespace();
            foreach (var arg in args)
                if (arg is Dictionary<string, object?> d) foreach (var (k, v) in d) ns[k] = v;
            foreach (var (k, v) in kwargs) ns[k] = v;
            return ns;
        })),
    ];

    static object? Arg(List<object?> args, int index, string name) =>
        index < args.Count ? args[index] : throw Py.TypeError($"missing required argument '{name}'");

    const long MaxRange = 100_000;

    static List<object?> Range(List<object?> args)
    {
        var n = args.Select(a => Py.Check(a) is long l ? l : throw Py.TypeError($"'{Py.TypeName(a)}' object cannot be interpreted as an integer")).ToList();
        var (start, stop, step) = n.Count switch { 1 => (0, n[0], 1L), 2 => (n[0], n[1], 1L), 3 => (n[0], n[1], n[2]), _ => throw Py.TypeError("range expected 1 to 3 arguments") };
        if (step == 0) throw new TemplateRuntimeException("ValueError", "range() arg 3 must not be zero");
        // jinja2's sandbox (safe_range) refuses ranges longer than MAX_RANGE.
        if ((stop - start) / (double)step > MaxRange)
            throw new TemplateRuntimeException("OverflowError", $"Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).");
        var list = new List<object?>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
        return list;
    }

    // ---- attribute and item lookup (jinja2.sandbox.SandboxedEnvironment.getattr / getitem)

    static readonly HashSet<string> UnsafeListMethods = ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"];
    static readonly HashSet<string> UnsafeDictMethods = ["pop", "popitem", "setdefault", "update", "clear"];

    static string ObjectName(object? v) => v is null ? "None" : $"{Py.TypeName(v)} object";

    public static object? GetAttr(object? target, string name)
    {
        if (target is Undefined u) throw Py.UndefinedError(u.Message);
        if (name.StartsWith('_')) throw new TemplateRuntimeException("SecurityError", $"access to attribute '{name}' of '{Py.TypeName(target)}' object is unsafe.");
        return Method(target, name) ?? (target switch
        {
            PyNamespace ns => ns.TryGetValue(name, out var v) ? v : Missing(target, name),
            Dictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : Missing(target, name),
            _ => Missing(target, name),
        });
    }

    public static object? GetItem(object? target, object? key)
    {
        if (target is Undefined u) throw Py.UndefinedError(u.Message);
        switch (target, Py.Check(key))
        {
            case (PyNamespace, _):
                break;
            case (Dictionary<string, object?> d, string k) when d.TryGetValue(k, out var v):
                return v;
            case (List<object?> l, long i) when i >= -l.Count && i < l.Count:
                return l[(int)(i < 0 ? i + l.Count : i)];
            case (string s, long i):
                var chars = Py.Chars(s);
                if (i >= -chars.Count && i < chars.Count) return chars[(int)(i < 0 ? i + chars.Count : i)];
                break;
        }
        return key is string name ? GetAttr(target, name) : Missing(target, key);
    }

    static Undefined Missing(object? target, object? key) =>
        new(key is string name ? $"'{ObjectName(target)}' has no attribute '{name}'" : $"'{ObjectName(target)}' has no element {Py.Repr(key)}");

    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        int? Index(object? v, string what) => v switch
        {
            null => null,
            long l => (int)Math.Clamp(l, int.MinValue / 2, int.MaxValue / 2),
            _ => throw Py.TypeError($"slice indices must be integers or None, not {Py.TypeName(v)} ({what})"),
        };
        var items = Py.Check(target) switch
        {
            string s => Py.Chars(s).Cast<object?>().ToList(),
            List<object?> l => l,
            var other => throw Py.TypeError($"'{Py.TypeName(other)}' object is not subscriptable"),
        };
        var n = items.Count;
        var k = Index(step, "step") ?? 1;
        if (k == 0) throw new TemplateRuntimeException("ValueError", "slice step cannot be zero");
        int Bound(int? v, int fallback)
        {
            if (v is not { } x) return fallback;
            if (x < 0) x += n;
            return k > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        var (from, to) = k > 0 ? (Bound(Index(start, "start"), 0), Bound(Index(stop, "stop"), n)) : (Bound(Index(start, "start"), n - 1), Bound(Index(stop, "stop"), -1));
        var picked = new List<object?>();
        for (var i = from; k > 0 ? i < to : i > to; i += k) picked.Add(items[i]);
        return target switch
        {
            string => string.Concat(picked.Cast<string>()),
            PyTuple => new PyTuple(picked),
            _ => picked,
        };
    }

    // ---- methods of str and dict

    static object? Method(object? target, string name) => target switch
    {
        string s => StringMethod(s, name),
        PyNamespace => null,
        Dictionary<string, object?> d => name switch
        {
            "items" => Bound(name, (_, _) => d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList()),
            "keys" => Bound(name, (_, _) => d.Keys.Cast<object?>().ToList()),
            "values" => Bound(name, (_, _) => d.Values.ToList()),
            "get" => Bound(name, (a, _) => d.TryGetValue(Py.Str(Arg(a, 0, "key")), out var v) ? v : a.ElementAtOrDefault(1)),
            _ when UnsafeDictMethods.Contains(name) => Unsafe(name, target),
            _ => null,
        },
        List<object?> l => name switch
        {
            "index" => Bound(name, (a, _) => (long)l.FindIndex(x => Py.Equals(x, Arg(a, 0, "value"))) is var i && i >= 0 ? i
                : throw new TemplateRuntimeException("ValueError", $"{Py.Repr(a[0])} is not in list")),
            "count" => Bound(name, (a, _) => (long)l.Count(x => Py.Equals(x, Arg(a, 0, "value")))),
            _ when UnsafeListMethods.Contains(name) => Unsafe(name, target),
            _ => null,
        },
        _ => null,
    };

    static PyCallable Bound(string name, Func<List<object?>, Dictionary<string, object?>, object?> call) => new(name, call);

    static PyCallable Unsafe(string name, object? target) => throw new TemplateRuntimeException("SecurityError",
        $"access to attribute '{name}' of '{Py.TypeName(target)}' object is unsafe.");

    static object? StringMethod(string s, string name) => name switch
    {
        "strip" => Bound(name, (a, _) => Strip(s, a.ElementAtOrDefault(0), true, true)),
        "lstrip" => Bound(name, (a, _) => Strip(s, a.ElementAtOrDefault(0), true, false)),
        "rstrip" => Bound(name, (a, _) => Strip(s, a.ElementAtOrDefault(0), false, true)),
        "split" => Bound(name, (a, kw) => Split(s, a.ElementAtOrDefault(0) ?? kw.GetValueOrDefault("sep"), a.ElementAtOrDefault(1) ?? kw.GetValueOrDefault("maxsplit"), fromRight: false)),
        "rsplit" => Bound(name, (a, kw) => Split(s, a.ElementAtOrDefault(0) ?? kw.GetValueOrDefault("sep"), a.ElementAtOrDefault(1) ?? kw.GetValueOrDefault("maxsplit"), fromRight: true)),
        "startswith" => Bound(name, (a, _) => Affixes(Arg(a, 0, "prefix")).Any(p => s.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => Bound(name, (a, _) => Affixes(Arg(a, 0, "suffix")).Any(p => s.EndsWith(p, StringComparison.Ordinal))),
        "upper" => Bound(name, (_, _) => s.ToUpperInvariant()),
        "lower" => Bound(name, (_, _) => s.ToLowerInvariant()),
        "title" => Bound(name, (_, _) => PythonTitle(s)),
        "capitalize" => Bound(name, (_, _) => Capitalize(s)),
        "replace" => Bound(name, (a, _) => Replace(s, Py.Str(Arg(a, 0, "old")), Py.Str(Arg(a, 1, "new")), a.ElementAtOrDefault(2) is long n ? n : -1)),
        "find" => Bound(name, (a, _) => (long)s.IndexOf(Py.Str(Arg(a, 0, "sub")), StringComparison.Ordinal)),
        "rfind" => Bound(name, (a, _) => (long)s.LastIndexOf(Py.Str(Arg(a, 0, "sub")), StringComparison.Ordinal)),
        "count" => Bound(name, (a, _) => (long)CountOf(s, Py.Str(Arg(a, 0, "sub")))),
        "join" => Bound(name, (a, _) => string.Join(s, Py.Iterate(Arg(a, 0, "iterable")).Select(x =>
            x as string ?? throw Py.TypeError($"sequence item: expected str instance, {Py.TypeName(x)} found")))),
        "splitlines" => Bound(name, (_, _) => s.Split('\n').Select(l => l.TrimEnd('\r')).SkipLast(s.EndsWith('\n') ? 1 : 0).Cast<object?>().ToList()),
        "isdigit" => Bound(name, (_, _) => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => Bound(name, (_, _) => s.Length > 0 && s.All(char.IsLetter)),
        "isspace" => Bound(name, (_, _) => s.Length > 0 && s.All(IsPySpace)),
        "isupper" => Bound(name, (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsLower)),
        "islower" => Bound(name, (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsUpper)),
        _ => null,
    };

    static IEnumerable<string> Affixes(object? arg) => arg switch
    {
        string s => [s],
        List<object?> l => l.Select(Py.Str),
        _ => throw Py.TypeError($"startswith first arg must be str or a tuple of str, not {Py.TypeName(arg)}"),
    };

    /// <summary>Python's str.isspace: Unicode whitespace plus the information separators \x1c-\x1f.</summary>
    static bool IsPySpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    static string Strip(string s, object? chars, bool left, bool right)
    {
        Func<char, bool> strip = chars switch
        {
            null => IsPySpace,
            string set => set.Contains,
            _ => throw Py.TypeError($"strip arg must be None or str, not {Py.TypeName(chars)}"),
        };
        var (from, to) = (0, s.Length);
        if (left) while (from < to && strip(s[from])) from++;
        if (right) while (to > from && strip(s[to - 1])) to--;
        return s[from..to];
    }

    static List<object?> Split(string s, object? sep, object? maxSplit, bool fromRight)
    {
        var max = maxSplit is long m ? m : -1;
        List<string> parts;
        if (sep is null)
        {
            parts = [];
            var words = new List<(int Start, int End)>();
            for (var i = 0; i < s.Length;)
            {
                while (i < s.Length && IsPySpace(s[i])) i++;
                var start = i;
                while (i < s.Length && !IsPySpace(s[i])) i++;
                if (i > start) words.Add((start, i));
            }
            if (max < 0 || words.Count <= max + 1) parts = words.Select(w => s[w.Start..w.End]).ToList();
            else if (!fromRight)
                parts = [.. words.Take((int)max).Select(w => s[w.Start..w.End]), Strip(s[words[(int)max].Start..], null, false, true)];
            else
                parts = [Strip(s[..words[^(int)(max + 1)].End], null, true, false), .. words.TakeLast((int)max).Select(w => s[w.Start..w.End])];
        }
        else
        {
            var separator = sep as string ?? throw Py.TypeError($"must be str or None, not {Py.TypeName(sep)}");
            if (separator.Length == 0) throw new TemplateRuntimeException("ValueError", "empty separator");
            var all = s.Split(separator);
            parts = max < 0 || all.Length <= max + 1 ? [.. all]
                : !fromRight ? [.. all.Take((int)max), string.Join(separator, all.Skip((int)max))]
                : [string.Join(separator, all.Take(all.Length - (int)max)), .. all.TakeLast((int)max)];
        }
        return parts.Cast<object?>().ToList();
    }

    static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0) return old.Length == 0 ? string.Join(replacement, Py.Chars(s).Prepend("").Append("")) : s.Replace(old, replacement, StringComparison.Ordinal);
        var sb = new StringBuilder();
        var (pos, done) = (0, 0L);
        while (done < count && old.Length > 0 && s.IndexOf(old, pos, StringComparison.Ordinal) is var at && at >= 0)
        {
            sb.Append(s, pos, at - pos).Append(replacement);
            pos = at + old.Length;
            done++;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    static int CountOf(string s, string sub)
    {
        if (sub.Length == 0) return Py.Chars(s).Count + 1;
        var (n, pos) = (0, 0);
        while ((pos = s.IndexOf(sub, pos, StringComparison.Ordinal)) >= 0)
        {
            n++;
            pos += sub.Length;
        }
        return n;
    }

    static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's str.title: a letter after a non-letter is upper-cased, the others lower-cased.</summary>
    static string PythonTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var c in s)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }
        return sb.ToString();
    }

    static string Strftime(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            var c = format[++i];
            sb.Append(c switch
            {
                'd' => t.Day.ToString("00", CultureInfo.InvariantCulture),
                'm' => t.Month.ToString("00", CultureInfo.InvariantCulture),
                'Y' => t.Year.ToString("0000", CultureInfo.InvariantCulture),
                'y' => (t.Year % 100).ToString("00", CultureInfo.InvariantCulture),
                'H' => t.Hour.ToString("00", CultureInfo.InvariantCulture),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", CultureInfo.InvariantCulture),
                'M' => t.Minute.ToString("00", CultureInfo.InvariantCulture),
                'S' => t.Second.ToString("00", CultureInfo.InvariantCulture),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'b' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(t.Month),
                'B' => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(t.Month),
                'a' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedDayName(t.DayOfWeek),
                'A' => CultureInfo.InvariantCulture.DateTimeFormat.GetDayName(t.DayOfWeek),
                'j' => t.DayOfYear.ToString("000", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }

    // ---- filters (jinja2/filters.py, and transformers' tojson)

    public static object? Filter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Opt(int index, string key, object? fallback = null) =>
            index < args.Count ? args[index] : kwargs.TryGetValue(key, out var v) ? v : fallback;
        switch (name)
        {
            case "trim": return Strip(Py.Str(value), Opt(0, "chars"), true, true);
            case "tojson":
                var indent = Opt(0, "indent") switch { null => null, long n => new string(' ', (int)n), string s => s, var x => throw Py.TypeError($"indent must be an int or str, not {Py.TypeName(x)}") };
                var separators = Opt(2, "separators") is List<object?> { Count: 2 } sep ? (Py.Str(sep[0]), Py.Str(sep[1])) : ((string, string)?)null;
                return PyJson.Dumps(value is Undefined ? throw Py.TypeError("Object of type Undefined is not JSON serializable") : value,
                    Py.Truthy(Opt(1, "ensure_ascii", false)), indent, separators, Py.Truthy(Opt(3, "sort_keys", false)));
            case "length" or "count": return Py.Length(value);
            case "string": return Py.Str(value);
            case "safe": return value;
            case "upper": return Py.Str(value).ToUpperInvariant();
            case "lower": return Py.Str(value).ToLowerInvariant();
            case "capitalize": return Capitalize(Py.Str(value));
            case "title": return JinjaTitle(Py.Str(value));
            case "default" or "d":
                return value is Undefined || Py.Truthy(Opt(1, "boolean", false)) && !Py.Truthy(value) ? Opt(0, "default_value", "") : value;
            case "first": return Py.Iterate(Py.Check(value)) is { Count: > 0 } f ? f[0] : new Undefined("No first item, sequence was empty.");
            case "last": return Py.Iterate(Py.Check(value)) is { Count: > 0 } lastOf ? lastOf[^1] : new Undefined("No last item, sequence was empty.");
            case "list": return Py.Iterate(value);
            case "reverse": return value is string rs ? string.Concat(Py.Chars(rs).AsEnumerable().Reverse()) : Enumerable.Reverse(Py.Iterate(Py.Check(value))).ToList();
            case "join":
                var items = Py.Iterate(value);
                if (Opt(1, "attribute") is { } joinAttribute) items = items.Select(x => Attribute(x, joinAttribute)).ToList();
                return string.Join(Py.Str(Opt(0, "d", "")), items.Select(Py.Str));
            case "items":
                return value is Undefined ? [] : Py.Check(value) is Dictionary<string, object?> d
                ? d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList()
                : throw Py.TypeError($"{Py.TypeName(value)} object has no attribute 'items'");
            case "map":
                var source = Py.Iterate(value);
                if (kwargs.TryGetValue("attribute", out var mapAttribute))
                    return source.Select(x => Attribute(x, mapAttribute) is Undefined && kwargs.TryGetValue("default", out var dv) ? dv : Attribute(x, mapAttribute)).ToList();
                var filterName = Py.Str(Arg(args, 0, "filter"));
                return source.Select(x => Filter(filterName, x, args.Skip(1).ToList(), kwargs)).ToList();
            case "select" or "reject":
                var keep = name == "select";
                return Py.Iterate(value).Where(x => (args.Count == 0 ? Py.Truthy(x) : Test(Py.Str(args[0]), x, args.Skip(1).ToList())) == keep).ToList();
            case "selectattr" or "rejectattr":
                var wanted = name == "selectattr";
                var attribute = Arg(args, 0, "attribute");
                return Py.Iterate(value).Where(x =>
                {
                    var field = Attribute(x, attribute);
                    return (args.Count < 2 ? Py.Truthy(field) : Test(Py.Str(args[1]), field, args.Skip(2).ToList())) == wanted;
                }).ToList();
            case "unique":
                var seen = new List<object?>();
                foreach (var x in Py.Iterate(value))
                    if (!seen.Any(y => Py.Equals(Fold(y), Fold(x)))) seen.Add(x);
                return seen;
            case "sort":
                var sortKey = Opt(2, "attribute");
                var sorted = Py.Iterate(value).OrderBy(x => Fold(sortKey is null ? x : Attribute(x, sortKey)), Comparer<object?>.Create((a, b) => Py.Compare(a, b, "<"))).ToList();
                if (Py.Truthy(Opt(0, "reverse", false))) sorted.Reverse();
                return sorted;
            case "dictsort":
                return Py.Check(value) is Dictionary<string, object?> ds
                    ? ds.OrderBy(kv => kv.Key.ToLowerInvariant(), StringComparer.Ordinal).Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList()
                    : throw Py.TypeError("dictsort expects a dict");
            case "replace": return Replace(Py.Str(value), Py.Str(Arg(args, 0, "old")), Py.Str(Arg(args, 1, "new")), Opt(2, "count") is long c ? c : -1);
            case "indent": return Indent(Py.Str(value), Opt(0, "width", 4L), Py.Truthy(Opt(1, "first", false)), Py.Truthy(Opt(2, "blank", false)));
            case "int":
                return Py.Check(value) switch
                {
                    long l => (object)l,
                    double dd => (long)Math.Truncate(dd),
                    bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed) => parsed,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var pd) => (long)Math.Truncate(pd),
                    _ => Opt(0, "default", 0L),
                };
            case "float":
                return Py.Check(value) switch
                {
                    long l => (object)(double)l,
                    double dd => dd,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var pd) => pd,
                    _ => Opt(0, "default", 0.0),
                };
            case "abs": return Py.Check(value) switch { long l => (object)Math.Abs(l), double dd => Math.Abs(dd), var x => throw Py.TypeError($"bad operand type for abs(): '{Py.TypeName(x)}'") };
            case "round":
                var digits = Opt(0, "precision", 0L) is long p ? (int)p : 0;
                var method = Py.Str(Opt(1, "method", "common"));
                var number = Py.Number(Py.Check(value)!);
                var scale = Math.Pow(10, digits);
                return method switch
                {
                    "ceil" => Math.Ceiling(number * scale) / scale,
                    "floor" => Math.Floor(number * scale) / scale,
                    _ => Math.Round(number, digits, MidpointRounding.ToEven), // Python's round()
                };
            case "sum":
                var terms = Py.Iterate(value);
                if (Opt(0, "attribute") is { } sumAttribute) terms = terms.Select(x => Attribute(x, sumAttribute)).ToList();
                return terms.Aggregate(Opt(1, "start", 0L), (acc, x) => Py.Add(acc, x));
            case "min" or "max":
                var pool = Py.Iterate(value);
                if (pool.Count == 0) return new Undefined($"No aggregated item, sequence was empty.");
                var cmp = Comparer<object?>.Create((a, b) => Py.Compare(Fold(a), Fold(b), "<"));
                return name == "min" ? pool.Min(cmp) : pool.Max(cmp);
            case "wordcount": return (long)Regex.Matches(Py.Str(value), @"\w+").Count;
            case "center": return Center(Py.Str(value), Opt(0, "width", 80L) is long w ? (int)w : 80);
            case "escape" or "e": return Escape(Py.Str(value));
            case "attr": return GetAttr(value, Py.Str(Arg(args, 0, "name")));
            default: throw new TemplateRuntimeException("TemplateAssertionError", $"No filter named '{name}'.");
        }
    }

    /// <summary>make_attrgetter: a dotted attribute path, or an index, looked up as jinja2's getitem does.</summary>
    static object? Attribute(object? item, object? path)
    {
        if (path is long index) return GetItem(item, index);
        foreach (var part in Py.Str(path).Split('.'))
            item = GetItem(item, int.TryParse(part, out var i) ? (long)i : part);
        return item;
    }

    /// <summary>Case-insensitive comparison key for sort / unique / min / max (jinja2 ignore_case).</summary>
    static object? Fold(object? v) => v is string s ? s.ToLowerInvariant() : v;

    /// <summary>jinja2's title filter: words split at whitespace, "-", "(", "{", "[" and "&lt;".</summary>
    static string JinjaTitle(string s) => string.Concat(WordBeginning().Split(s).Where(p => p.Length > 0)
        .Select(p => char.ToUpperInvariant(p[0]) + p[1..].ToLowerInvariant()));

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginning();

    /// <summary>jinja2 3.1 do_indent, including its trailing-newline quirk.</summary>
    static string Indent(string s, object? width, bool first, bool blank)
    {
        var indention = width is string w ? w : new string(' ', width is long n ? (int)n : 4);
        s += "\n";
        var lines = s.Split('\n').SkipLast(1).ToList();
        string rv;
        if (blank) rv = string.Join("\n" + indention, lines);
        else
        {
            rv = lines[0];
            if (lines.Count > 1) rv += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indention + l : l));
        }
        return first ? indention + rv : rv;
    }

    static string Center(string s, int width)
    {
        var pad = width - s.Length;
        if (pad <= 0) return s;
        var left = pad / 2 + (pad & width & 1);
        return new string(' ', left) + s + new string(' ', pad - left);
    }

    static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&#34;").Replace("'", "&#39;");

    // ---- tests (jinja2/tests.py)

    public static bool Test(string name, object? value, List<object?> args) => name switch
    {
        "defined" => value is not Undefined,
        "undefined" => value is Undefined,
        "none" => value is null,
        "boolean" => value is bool,
        "true" => value is true,
        "false" => value is false,
        "integer" => value is long,
        "float" => value is double,
        "number" => value is long or double or bool,
        "string" => value is string,
        "mapping" => value is Dictionary<string, object?> and not PyNamespace,
        "iterable" => value is string or List<object?> or Dictionary<string, object?> or Undefined,
        "sequence" => value is string or List<object?> or Dictionary<string, object?> or Undefined,
        "callable" => value is PyCallable,
        "sameas" => ReferenceEquals(value, Arg(args, 0, "other")) || value is null && args[0] is null || value is bool b && args[0] is bool c && b == c,
        "equalto" or "eq" or "==" => Py.Equals(value, Arg(args, 0, "other")),
        "ne" or "!=" => !Py.Equals(value, Arg(args, 0, "other")),
        "lt" or "lessthan" or "<" => Py.Compare(value, Arg(args, 0, "other"), "<") < 0,
        "le" or "<=" => Py.Compare(value, Arg(args, 0, "other"), "<=") <= 0,
        "gt" or "greaterthan" or ">" => Py.Compare(value, Arg(args, 0, "other"), ">") > 0,
        "ge" or ">=" => Py.Compare(value, Arg(args, 0, "other"), ">=") >= 0,
        "in" => Py.Contains(Arg(args, 0, "seq"), value),
        "odd" => Py.Check(value) is long o ? o % 2 != 0 : throw Py.TypeError("odd expects an integer"),
        "even" => Py.Check(value) is long e ? e % 2 == 0 : throw Py.TypeError("even expects an integer"),
        "divisibleby" => Py.Check(value) is long v && Arg(args, 0, "num") is long by ? by != 0 ? v % by == 0 : throw new TemplateRuntimeException("ZeroDivisionError", "integer division or modulo by zero")
            : throw Py.TypeError("divisibleby expects integers"),
        "lower" => Py.Str(value) is var ls && ls == ls.ToLowerInvariant(),
        "upper" => Py.Str(value) is var us && us == us.ToUpperInvariant(),
        "escaped" => false,
        _ => throw new TemplateRuntimeException("TemplateAssertionError", $"No test named '{name}'."),
    };
}
