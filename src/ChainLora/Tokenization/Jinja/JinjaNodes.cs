// The syntax tree of a Jinja template: statements (text, output, if, for, set, macro, ...) and
// expressions, as jinja2's parser builds them for the subset chat templates use.
namespace ChainLora.Tokenization.Jinja;

abstract record Node(int Line);

sealed record TextNode(int Line, string Text) : Node(Line);
sealed record OutputNode(int Line, Expr Value) : Node(Line);
sealed record IfNode(int Line, List<(Expr Test, List<Node> Body)> Branches, List<Node> Else) : Node(Line);
sealed record ForNode(int Line, List<string> Targets, Expr Iterable, Expr? Filter, List<Node> Body, List<Node> Else) : Node(Line);
/// <summary>{% set a = x %}, {% set a, b = x %} or {% set ns.attr = x %} (Attribute set).</summary>
sealed record SetNode(int Line, List<string> Targets, string? Attribute, Expr Value) : Node(Line);
sealed record SetBlockNode(int Line, string Target, List<Node> Body) : Node(Line);
sealed record MacroNode(int Line, string Name, List<(string Name, Expr? Default)> Parameters, List<Node> Body) : Node(Line);
sealed record BreakNode(int Line) : Node(Line);
sealed record ContinueNode(int Line) : Node(Line);
/// <summary>transformers' {% generation %} block: rendered as is, its span recorded (the assistant's tokens).</summary>
sealed record GenerationNode(int Line, List<Node> Body) : Node(Line);

abstract record Expr(int Line);

sealed record ConstExpr(int Line, object? Value) : Expr(Line);
sealed record NameExpr(int Line, string Name) : Expr(Line);
sealed record AttrExpr(int Line, Expr Target, string Name) : Expr(Line);
sealed record ItemExpr(int Line, Expr Target, Expr Key) : Expr(Line);
sealed record SliceExpr(int Line, Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr(Line);
sealed record CallExpr(int Line, Expr Target, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
sealed record FilterExpr(int Line, Expr Target, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
sealed record TestExpr(int Line, Expr Target, string Name, List<Expr> Args, bool Negated) : Expr(Line);
sealed record UnaryExpr(int Line, string Op, Expr Operand) : Expr(Line);
sealed record BinaryExpr(int Line, string Op, Expr Left, Expr Right) : Expr(Line);
sealed record CompareExpr(int Line, Expr First, List<(string Op, Expr Right)> Rest) : Expr(Line);
sealed record CondExpr(int Line, Expr Test, Expr Then, Expr? Else) : Expr(Line);
sealed record ListExpr(int Line, List<Expr> Items, bool Tuple) : Expr(Line);
sealed record DictExpr(int Line, List<(Expr Key, Expr Value)> Items) : Expr(Line);
