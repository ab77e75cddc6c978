// Tokens to a syntax tree, with jinja2's grammar and precedence (jinja2/parser.py): conditional
// expressions, or, and, not, comparisons (in, not in), + -, ~, * / // %, **, unary -,
// postfix (.attr, [key], [a:b:c], calls) and then filters and tests, which bind tighter than any
// operator (`a + b | trim` trims b). Statements: if / elif / else, for (with an inline `if`
// filter and else), set (names, tuples, namespace attributes, blocks), macro, break / continue
// (jinja2.ext.loopcontrols) and transformers' generation block.
namespace ChainLora.Tokenization.Jinja;

sealed class JinjaParser
{
    readonly List<Token> tokens;
    int pos;

    JinjaParser(List<Token> tokens) => this.tokens = tokens;

    public static List<Node> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.Statements(out var end);
        if (end is not null) throw parser.Error($"unexpected '{end}'");
        return body;
    }

    Token Peek(int ahead = 0) => tokens[Math.Min(pos + ahead, tokens.Count - 1)];
    Token Next() => tokens[pos++];
    TemplateSyntaxException Error(string message) => new($"line {Peek().Line}: {message}");

    bool IsOp(string op, int ahead = 0) => Peek(ahead) is { Kind: TokenKind.Operator } t && t.Value == op;
    bool IsName(string name, int ahead = 0) => Peek(ahead) is { Kind: TokenKind.Name } t && t.Value == name;

    void ExpectOp(string op)
    {
        if (!IsOp(op)) throw Error($"expected '{op}', found '{Describe(Peek())}'");
        pos++;
    }

    void Expect(TokenKind kind)
    {
        if (Peek().Kind != kind) throw Error($"expected {kind}, found '{Describe(Peek())}'");
        pos++;
    }

    string ExpectName()
    {
        if (Peek().Kind != TokenKind.Name) throw Error($"expected a name, found '{Describe(Peek())}'");
        return Next().Value;
    }

    static string Describe(Token t) => t.Kind == TokenKind.End ? "end of template" : t.Value;

    /// <summary>Statements up to a block tag this level does not own; that tag's keyword is returned in <paramref name="end"/>.</summary>
    List<Node> Statements(out string? end, params string[] ends)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var t = Peek();
            switch (t.Kind)
            {
                case TokenKind.End:
                    end = null;
                    if (ends.Length > 0) throw Error($"unexpected end of template, expected {string.Join(" or ", ends.Select(e => $"'{e}'"))}");
                    return nodes;
                case TokenKind.Text:
                    nodes.Add(new TextNode(t.Line, Next().Value));
                    break;
                case TokenKind.VariableBegin:
                    pos++;
                    nodes.Add(new OutputNode(t.Line, Expression()));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    var keyword = Peek(1).Kind == TokenKind.Name ? Peek(1).Value : "";
                    if (ends.Contains(keyword))
                    {
                        pos += 2;
                        end = keyword;
                        return nodes;
                    }
                    pos++;
                    nodes.Add(Statement(t.Line));
                    break;
                default:
                    throw Error($"unexpected '{t.Value}'");
            }
        }
    }

    Node Statement(int line)
    {
        var keyword = ExpectName();
        switch (keyword)
        {
            case "if": return If(line);
            case "for": return For(line);
            case "set": return Set(line);
            case "macro": return Macro(line);
            case "break":
                Expect(TokenKind.BlockEnd);
                return new BreakNode(line);
            case "continue":
                Expect(TokenKind.BlockEnd);
                return new ContinueNode(line);
            case "generation":
                Expect(TokenKind.BlockEnd);
                var body = Statements(out _, "endgeneration");
                Expect(TokenKind.BlockEnd);
                return new GenerationNode(line, body);
            default:
                throw new TemplateSyntaxException($"line {line}: the tag '{keyword}' is not supported in chat templates");
        }
    }

    IfNode If(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        var test = Expression();
        while (true)
        {
            Expect(TokenKind.BlockEnd);
            var body = Statements(out var end, "elif", "else", "endif");
            branches.Add((test, body));
            if (end == "elif")
            {
                test = Expression();
                continue;
            }
            var elseBody = new List<Node>();
            if (end == "else")
            {
                Expect(TokenKind.BlockEnd);
                elseBody = Statements(out _, "endif");
            }
            Expect(TokenKind.BlockEnd);
            return new IfNode(line, branches, elseBody);
        }
    }

    ForNode For(int line)
    {
        var targets = new List<string> { ExpectName() };
        while (IsOp(","))
        {
            pos++;
            targets.Add(ExpectName());
        }
        if (!IsName("in")) throw Error($"expected 'in', found '{Describe(Peek())}'");
        pos++;
        var iterable = Conditional(allowIf: false);
        Expr? filter = null;
        if (IsName("if"))
        {
            pos++;
            filter = Conditional(allowIf: false);
        }
        if (IsName("recursive")) throw Error("recursive loops are not supported in chat templates");
        Expect(TokenKind.BlockEnd);
        var body = Statements(out var end, "else", "endfor");
        var elseBody = new List<Node>();
        if (end == "else")
        {
            Expect(TokenKind.BlockEnd);
            elseBody = Statements(out _, "endfor");
        }
        Expect(TokenKind.BlockEnd);
        return new ForNode(line, targets, iterable, filter, body, elseBody);
    }

    Node Set(int line)
    {
        var first = ExpectName();
        if (IsOp("."))
        {
            pos++;
            var attribute = ExpectName();
            ExpectOp("=");
            var value = Expression();
            Expect(TokenKind.BlockEnd);
            return new SetNode(line, [first], attribute, value);
        }
        var targets = new List<string> { first };
        while (IsOp(","))
        {
            pos++;
            targets.Add(ExpectName());
        }
        if (Peek().Kind == TokenKind.BlockEnd && targets.Count == 1)
        {
            pos++;
            var body = Statements(out _, "endset");
            Expect(TokenKind.BlockEnd);
            return new SetBlockNode(line, first, body);
        }
        ExpectOp("=");
        var assigned = Expression();
        Expect(TokenKind.BlockEnd);
        return new SetNode(line, targets, null, assigned);
    }

    MacroNode Macro(int line)
    {
        var name = ExpectName();
        ExpectOp("(");
        var parameters = new List<(string, Expr?)>();
        while (!IsOp(")"))
        {
            var parameter = ExpectName();
            Expr? fallback = null;
            if (IsOp("="))
            {
                pos++;
                fallback = Expression();
            }
            parameters.Add((parameter, fallback));
            if (!IsOp(")")) ExpectOp(",");
        }
        pos++;
        Expect(TokenKind.BlockEnd);
        var body = Statements(out _, "endmacro");
        Expect(TokenKind.BlockEnd);
        return new MacroNode(line, name, parameters, body);
    }

    // ---- expressions, lowest precedence first

    /// <summary>An expression; a bare comma-separated list is a tuple (as in `{% set a = 1, 2 %}`).</summary>
    Expr Expression()
    {
        var first = Conditional(allowIf: true);
        if (!IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (IsOp(","))
        {
            pos++;
            if (Peek().Kind is TokenKind.BlockEnd or TokenKind.VariableEnd) break;
            items.Add(Conditional(allowIf: true));
        }
        return new ListExpr(first.Line, items, Tuple: true);
    }

    Expr Conditional(bool allowIf)
    {
        var expr = Or();
        while (allowIf && IsName("if"))
        {
            pos++;
            var test = Or();
            Expr? otherwise = null;
            if (IsName("else"))
            {
                pos++;
                otherwise = Conditional(allowIf: true);
            }
            expr = new CondExpr(expr.Line, test, expr, otherwise);
        }
        return expr;
    }

    Expr Or()
    {
        var left = And();
        while (IsName("or"))
        {
            pos++;
            left = new BinaryExpr(left.Line, "or", left, And());
        }
        return left;
    }

    Expr And()
    {
        var left = Not();
        while (IsName("and"))
        {
            pos++;
            left = new BinaryExpr(left.Line, "and", left, Not());
        }
        return left;
    }

    Expr Not()
    {
        if (!IsName("not")) return Compare();
        var line = Next().Line;
        return new UnaryExpr(line, "not", Not());
    }

    Expr Compare()
    {
        var first = Math1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Peek().Kind == TokenKind.Operator && Peek().Value is "==" or "!=" or "<" or "<=" or ">" or ">=")
                rest.Add((Next().Value, Math1()));
            else if (IsName("in"))
            {
                pos++;
                rest.Add(("in", Math1()));
            }
            else if (IsName("not") && IsName("in", 1))
            {
                pos += 2;
                rest.Add(("not in", Math1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first.Line, first, rest);
    }

    Expr Math1()
    {
        var left = Concat();
        while (IsOp("+") || IsOp("-"))
        {
            var op = Next().Value;
            left = new BinaryExpr(left.Line, op, left, Concat());
        }
        return left;
    }

    Expr Concat()
    {
        var left = Math2();
        while (IsOp("~"))
        {
            pos++;
            left = new BinaryExpr(left.Line, "~", left, Math2());
        }
        return left;
    }

    Expr Math2()
    {
        var left = Pow();
        while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%"))
        {
            var op = Next().Value;
            left = new BinaryExpr(left.Line, op, left, Pow());
        }
        return left;
    }

    Expr Pow()
    {
        var left = Unary(withFilter: true);
        while (IsOp("**"))
        {
            pos++;
            left = new BinaryExpr(left.Line, "**", left, Unary(withFilter: true));
        }
        return left;
    }

    Expr Unary(bool withFilter)
    {
        Expr expr;
        if (IsOp("-") || IsOp("+"))
        {
            var t = Next();
            expr = new UnaryExpr(t.Line, t.Value, Unary(withFilter: false));
        }
        else expr = Postfix(Primary());
        return withFilter ? FilterTests(expr) : expr;
    }

    Expr Primary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.String:
                var text = (string)t.Literal!;
                while (Peek().Kind == TokenKind.String) text += (string)Next().Literal!; // adjacent literals join
                return new ConstExpr(t.Line, text);
            case TokenKind.Integer or TokenKind.Float:
                return new ConstExpr(t.Line, t.Literal);
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(t.Line, true),
                    "false" or "False" => new ConstExpr(t.Line, false),
                    "none" or "None" => new ConstExpr(t.Line, null),
                    _ => new NameExpr(t.Line, t.Value),
                };
            case TokenKind.Operator when t.Value == "(":
                if (IsOp(")"))
                {
                    pos++;
                    return new ListExpr(t.Line, [], Tuple: true);
                }
                var inner = Conditional(allowIf: true);
                if (IsOp(","))
                {
                    var items = new List<Expr> { inner };
                    while (IsOp(","))
                    {
                        pos++;
                        if (IsOp(")")) break;
                        items.Add(Conditional(allowIf: true));
                    }
                    inner = new ListExpr(t.Line, items, Tuple: true);
                }
                ExpectOp(")");
                return inner;
            case TokenKind.Operator when t.Value == "[":
                var list = new List<Expr>();
                while (!IsOp("]"))
                {
                    list.Add(Conditional(allowIf: true));
                    if (!IsOp("]")) ExpectOp(",");
                }
                pos++;
                return new ListExpr(t.Line, list, Tuple: false);
            case TokenKind.Operator when t.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    var key = Conditional(allowIf: true);
                    ExpectOp(":");
                    pairs.Add((key, Conditional(allowIf: true)));
                    if (!IsOp("}")) ExpectOp(",");
                }
                pos++;
                return new DictExpr(t.Line, pairs);
            default:
                pos--;
                throw Error($"unexpected '{Describe(t)}'");
        }
    }

    Expr Postfix(Expr expr)
    {
        while (true)
        {
            if (IsOp("."))
            {
                pos++;
                var t = Next();
                expr = t.Kind switch
                {
                    TokenKind.Name => new AttrExpr(expr.Line, expr, t.Value),
                    TokenKind.Integer => new ItemExpr(expr.Line, expr, new ConstExpr(t.Line, t.Literal)),
                    _ => throw Error($"expected an attribute name after '.', found '{Describe(t)}'"),
                };
            }
            else if (IsOp("["))
                expr = Subscript(expr);
            else if (IsOp("("))
            {
                var (args, kwargs) = Arguments();
                expr = new CallExpr(expr.Line, expr, args, kwargs);
            }
            else return expr;
        }
    }

    Expr Subscript(Expr target)
    {
        ExpectOp("[");
        Expr? start = null, stop = null, step = null;
        if (!IsOp(":")) start = Conditional(allowIf: true);
        if (!IsOp(":"))
        {
            ExpectOp("]");
            return new ItemExpr(target.Line, target, start!);
        }
        pos++;
        if (!IsOp(":") && !IsOp("]")) stop = Conditional(allowIf: true);
        if (IsOp(":"))
        {
            pos++;
            if (!IsOp("]")) step = Conditional(allowIf: true);
        }
        ExpectOp("]");
        return new SliceExpr(target.Line, target, start, stop, step);
    }

    (List<Expr>, List<(string, Expr)>) Arguments()
    {
        ExpectOp("(");
        var (args, kwargs) = (new List<Expr>(), new List<(string, Expr)>());
        while (!IsOp(")"))
        {
            if (Peek().Kind == TokenKind.Name && IsOp("=", 1))
            {
                var name = Next().Value;
                pos++;
                kwargs.Add((name, Conditional(allowIf: true)));
            }
            else if (kwargs.Count > 0) throw Error("a positional argument follows a keyword argument");
            else args.Add(Conditional(allowIf: true));
            if (!IsOp(")")) ExpectOp(",");
        }
        pos++;
        return (args, kwargs);
    }

    /// <summary>`| filter(args)` and `is [not] test(args)` after a unary expression.</summary>
    Expr FilterTests(Expr expr)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                pos++;
                var name = ExpectName();
                var (args, kwargs) = IsOp("(") ? Arguments() : ([], []);
                expr = new FilterExpr(expr.Line, expr, name, args, kwargs);
            }
            else if (IsName("is"))
            {
                pos++;
                var negated = IsName("not");
                if (negated) pos++;
                var name = ExpectName();
                var args = new List<Expr>();
                if (IsOp("("))
                    args = Arguments().Item1;
                else if (Peek().Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                    || Peek().Kind == TokenKind.Name && Peek().Value is not ("and" or "or" or "else" or "if" or "in" or "not" or "is"))
                    args = [Unary(withFilter: false)]; // `x is divisibleby 3`, `x is sameas none`
                expr = new TestExpr(expr.Line, expr, name, args, negated);
            }
            else return expr;
        }
    }
}
