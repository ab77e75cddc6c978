// Renders a parsed template the way jinja2 does: a for loop gives each iteration a fresh scope
// (a {% set %} inside it never leaks out, hence namespace()), `if` opens none, attribute access
// tries the attribute then the item and subscript the item then the attribute (jinja2's
// sandboxed getattr / getitem), and a missing name or key is Undefined until it is used.
using System.Text;

namespace ChainLora.Tokenization.Jinja;

/// <summary>The rendered text and the spans its {% generation %} blocks produced.</summary>
public sealed record JinjaOutput(string Text, IReadOnlyList<(int Start, int End)> GenerationSpans);

sealed class JinjaRenderer
{
    enum Flow { Normal, Break, Continue }

    sealed class Frame(Frame? parent)
    {
        public readonly Dictionary<string, object?> Vars = [];

        public bool TryGet(string name, out object? value)
        {
            for (var f = this; f is not null; f = f.Parent)
                if (f.Vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }

        public Frame? Parent { get; } = parent;
    }

    readonly StringBuilder output = new();
    readonly List<(int, int)> spans = [];
    readonly Frame root;

    JinjaRenderer(IReadOnlyDictionary<string, object?> context, Func<DateTime> clock)
    {
        var globals = new Frame(null);
        foreach (var (name, value) in JinjaBuiltins.Globals(clock)) globals.Vars[name] = value;
        var contextFrame = new Frame(globals);
        foreach (var (name, value) in context) contextFrame.Vars[name] = value;
        root = new Frame(contextFrame);
    }

    public static JinjaOutput Render(List<Node> template, IReadOnlyDictionary<string, object?> context, Func<DateTime> clock)
    {
        var renderer = new JinjaRenderer(context, clock);
        renderer.Exec(template, renderer.root, renderer.output);
        return new JinjaOutput(renderer.output.ToString(), renderer.spans);
    }

    Flow Exec(List<Node> nodes, Frame frame, StringBuilder sb)
    {
        foreach (var node in nodes)
        {
            var flow = Exec(node, frame, sb);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    Flow Exec(Node node, Frame frame, StringBuilder sb)
    {
        switch (node)
        {
            case TextNode t:
                sb.Append(t.Text);
                return Flow.Normal;
            case OutputNode o:
                sb.Append(Py.Str(Eval(o.Value, frame)));
                return Flow.Normal;
            case IfNode i:
                foreach (var (test, body) in i.Branches)
                    if (Py.Truthy(Eval(test, frame))) return Exec(body, frame, sb);
                return Exec(i.Else, frame, sb);
            case ForNode f:
                return For(f, frame, sb);
            case SetNode s:
                Assign(s, frame);
                return Flow.Normal;
            case SetBlockNode b:
                var captured = new StringBuilder();
                Exec(b.Body, frame, captured);
                frame.Vars[b.Target] = captured.ToString();
                return Flow.Normal;
            case MacroNode m:
                frame.Vars[m.Name] = Macro(m, frame);
                return Flow.Normal;
            case BreakNode:
                return Flow.Break;
            case ContinueNode:
                return Flow.Continue;
            case GenerationNode g:
                var start = sb.Length;
                var flow = Exec(g.Body, frame, sb);
                if (ReferenceEquals(sb, output)) spans.Add((start, sb.Length));
                return flow;
            default:
                throw new InvalidOperationException($"unknown node {node.GetType().Name}");
        }
    }

    Flow For(ForNode f, Frame frame, StringBuilder sb)
    {
        var items = Py.Iterate(Py.Check(Eval(f.Iterable, frame)));
        if (f.Filter is not null)
            items = items.Where(item => Py.Truthy(Eval(f.Filter, Iteration(f, frame, item, null)))).ToList();
        for (var i = 0; i < items.Count; i++)
        {
            var loop = new PyNamespace
            {
                ["index"] = (long)(i + 1), ["index0"] = (long)i, ["revindex"] = (long)(items.Count - i),
                ["revindex0"] = (long)(items.Count - i - 1), ["first"] = i == 0, ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count, ["depth"] = 1L, ["depth0"] = 0L,
                ["previtem"] = i > 0 ? items[i - 1] : new Undefined("there is no previous item"),
                ["nextitem"] = i + 1 < items.Count ? items[i + 1] : new Undefined("there is no next item"),
            };
            var index = i;
            loop["cycle"] = new PyCallable("cycle", (args, _) =>
                args.Count == 0 ? throw Py.TypeError("no items for cycling given") : args[index % args.Count]);
            var flow = Exec(f.Body, Iteration(f, frame, items[i], loop), sb);
            if (flow == Flow.Break) break;
        }
        return items.Count == 0 ? Exec(f.Else, frame, sb) : Flow.Normal;
    }

    /// <summary>A fresh scope per iteration, holding the loop targets (unpacked as Python does) and `loop`.</summary>
    static Frame Iteration(ForNode f, Frame parent, object? item, PyNamespace? loop)
    {
        var frame = new Frame(parent);
        Unpack(f.Targets, item, frame);
        if (loop is not null) frame.Vars["loop"] = loop;
        return frame;
    }

    static void Unpack(List<string> targets, object? value, Frame frame)
    {
        if (targets.Count == 1)
        {
            frame.Vars[targets[0]] = value;
            return;
        }
        var items = Py.Iterate(Py.Check(value));
        if (items.Count != targets.Count)
            throw new TemplateRuntimeException("ValueError", items.Count > targets.Count
                ? $"too many values to unpack (expected {targets.Count})"
                : $"not enough values to unpack (expected {targets.Count}, got {items.Count})");
        for (var i = 0; i < targets.Count; i++) frame.Vars[targets[i]] = items[i];
    }

    void Assign(SetNode s, Frame frame)
    {
        var value = Eval(s.Value, frame);
        if (s.Attribute is null)
        {
            Unpack(s.Targets, value, frame);
            return;
        }
        if (!frame.TryGet(s.Targets[0], out var target) || target is not PyNamespace ns)
            throw new TemplateRuntimeException("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
        ns[s.Attribute] = value;
    }

    PyCallable Macro(MacroNode m, Frame definedIn) => new(m.Name, (args, kwargs) =>
    {
        var frame = new Frame(definedIn);
        for (var i = 0; i < m.Parameters.Count; i++)
        {
            var (name, fallback) = m.Parameters[i];
            frame.Vars[name] = i < args.Count ? args[i]
                : kwargs.TryGetValue(name, out var given) ? given
                : fallback is not null ? Eval(fallback, frame)
                : new Undefined($"parameter '{name}' was not provided");
        }
        if (args.Count > m.Parameters.Count)
            throw Py.TypeError($"macro '{m.Name}' takes not more than {m.Parameters.Count} argument(s)");
        var sb = new StringBuilder();
        Exec(m.Body, frame, sb);
        return sb.ToString();
    });

    object? Eval(Expr expr, Frame frame)
    {
        switch (expr)
        {
            case ConstExpr c:
                return c.Value;
            case NameExpr n:
                return frame.TryGet(n.Name, out var value) ? value : new Undefined($"'{n.Name}' is undefined");
            case AttrExpr a:
                return JinjaBuiltins.GetAttr(Eval(a.Target, frame), a.Name);
            case ItemExpr i:
                return JinjaBuiltins.GetItem(Eval(i.Target, frame), Eval(i.Key, frame));
            case SliceExpr s:
                return JinjaBuiltins.Slice(Eval(s.Target, frame), Optional(s.Start, frame), Optional(s.Stop, frame), Optional(s.Step, frame));
            case CallExpr c:
                var callee = Eval(c.Target, frame);
                return callee switch
                {
                    PyCallable f => f.Invoke(c.Args.Select(x => Eval(x, frame)).ToList(), Kwargs(c.Kwargs, frame)),
                    Undefined u => throw Py.UndefinedError(u.Message),
                    _ => throw Py.TypeError($"'{Py.TypeName(callee)}' object is not callable"),
                };
            case FilterExpr f:
                return JinjaBuiltins.Filter(f.Name, Eval(f.Target, frame), f.Args.Select(x => Eval(x, frame)).ToList(), Kwargs(f.Kwargs, frame));
            case TestExpr t:
                var passed = JinjaBuiltins.Test(t.Name, Eval(t.Target, frame), t.Args.Select(x => Eval(x, frame)).ToList());
                return t.Negated ? !passed : passed;
            case UnaryExpr u:
                var operand = Eval(u.Operand, frame);
                return u.Op switch
                {
                    "not" => !Py.Truthy(operand),
                    "-" => Py.Check(operand) switch
                    {
                        long l => (object)-l,
                        double d => -d,
                        bool b => b ? -1L : 0L,
                        var other => throw Py.TypeError($"bad operand type for unary -: '{Py.TypeName(other)}'"),
                    },
                    _ => Py.IsNumber(Py.Check(operand)) ? operand : throw Py.TypeError($"bad operand type for unary +: '{Py.TypeName(operand)}'"),
                };
            case BinaryExpr b:
                return Binary(b, frame);
            case CompareExpr c:
                var left = Eval(c.First, frame);
                foreach (var (op, rightExpr) in c.Rest)
                {
                    var right = Eval(rightExpr, frame);
                    var holds = op switch
                    {
                        "==" => Py.Equals(left, right),
                        "!=" => !Py.Equals(left, right),
                        "in" => Py.Contains(right, left),
                        "not in" => !Py.Contains(right, left),
                        "<" => Py.Compare(left, right, op) < 0,
                        "<=" => Py.Compare(left, right, op) <= 0,
                        ">" => Py.Compare(left, right, op) > 0,
                        _ => Py.Compare(left, right, op) >= 0,
                    };
                    if (!holds) return false;
                    left = right;
                }
                return true;
            case CondExpr c:
                return Py.Truthy(Eval(c.Test, frame)) ? Eval(c.Then, frame)
                    : c.Else is null ? new Undefined("the inline if-expression evaluated to false and no else section was defined")
                    : Eval(c.Else, frame);
            case ListExpr l:
                var items = l.Items.Select(x => Eval(x, frame));
                return l.Tuple ? new PyTuple(items) : items.ToList();
            case DictExpr d:
                var dict = new Dictionary<string, object?>();
                foreach (var (k, v) in d.Items)
                    dict[Eval(k, frame) as string ?? throw Py.TypeError("only string keys are supported in dict literals")] = Eval(v, frame);
                return dict;
            default:
                throw new InvalidOperationException($"unknown expression {expr.GetType().Name}");
        }
    }

    object? Optional(Expr? e, Frame frame) => e is null ? null : Eval(e, frame);

    Dictionary<string, object?> Kwargs(List<(string Name, Expr Value)> kwargs, Frame frame) =>
        kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, frame));

    object? Binary(BinaryExpr b, Frame frame)
    {
        var left = Eval(b.Left, frame);
        switch (b.Op)
        {
            case "and":
                return Py.Truthy(left) ? Eval(b.Right, frame) : left;
            case "or":
                return Py.Truthy(left) ? left : Eval(b.Right, frame);
        }
        var right = Eval(b.Right, frame);
        return b.Op switch
        {
            "~" => Py.Str(left) + Py.Str(right),
            "+" => Py.Add(left, right),
            _ => Py.Arithmetic(b.Op, left, right),
        };
    }
}
