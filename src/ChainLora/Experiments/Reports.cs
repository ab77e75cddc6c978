// Markdown and CSV tables shaped like the paper's: Table 1 (methods x tasks with the relative gain
// of COLA over LoRA), Table 3 (chain length), Table 4 (rank step-down and FLOPs saved), Table 5
// (optimizers). Scores are shown as percentages (accuracy, F1) or as NLL per token (lm).
using System.Globalization;
using System.Text;
using ChainLora.IO;
using ChainLora.Training;

namespace ChainLora.Experiments;

public sealed record ReportTable(string Title, IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows)
{
    public string Markdown()
    {
        var sb = new StringBuilder($"### {Title}\n\n| {string.Join(" | ", Header)} |\n|{string.Concat(Header.Select(_ => "---|"))}\n");
        foreach (var r in Rows) sb.Append($"| {string.Join(" | ", r)} |\n");
        return sb.ToString();
    }

    public string Csv()
    {
        static string Q(string s) => s.Contains(',') || s.Contains('"') ? $"\"{s.Replace("\"", "\"\"")}\"" : s;
        return string.Join("\n", new[] { Header }.Concat(Rows).Select(r => string.Join(",", r.Select(Q)))) + "\n";
    }
}

public static class Reports
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Score(CellSummary c) => c.Metric == "-nll"
        ? string.Format(Inv, "{0:F3} ± {1:F3}", -c.Mean, c.Std)
        : string.Format(Inv, "{0:F1} ± {1:F1}", 100 * c.Mean, 100 * c.Std);

    static IEnumerable<string> TasksOf(IReadOnlyList<CellSummary> cells) => cells.Select(c => c.Task).Distinct();

    static CellSummary? Find(IReadOnlyList<CellSummary> cells, string task, string method) =>
        cells.FirstOrDefault(c => c.Task == task && c.Method == method);

    /// <summary>The reference LoRA: chain length 1, AdamW, no rank list beyond its one rank.</summary>
    static string? LoraMethod(IReadOnlyList<CellSummary> cells) =>
        cells.FirstOrDefault(c => c.Example.Kind == MethodKind.Lora && c.Example.Optimizer == OptimizerKind.AdamW)?.Method;

    public static ReportTable Table1(IReadOnlyList<CellSummary> cells)
    {
        var tasks = TasksOf(cells).ToList();
        var methods = cells.Select(c => c.Method).Distinct().ToList();
        var rows = methods.Select(m => (IReadOnlyList<string>)[m, .. tasks.Select(t => Find(cells, t, m) is { } c ? Score(c) : "")]).ToList();
        var lora = LoraMethod(cells);
        var cola = cells.Where(c => c.Example.Kind == MethodKind.Cola && c.Example.Optimizer == OptimizerKind.AdamW && c.Example.Ranks is null)
            .Select(c => c.Method).Distinct().ToList();
        if (lora is not null)
            foreach (var m in cola)
                rows.Add([$"relative gain of {m} over {lora}", .. tasks.Select(t =>
                    Find(cells, t, m) is { } c && Find(cells, t, lora) is { } l && l.Mean != 0
                        ? string.Format(Inv, "{0:+0.00;-0.00}%", 100 * (c.Mean - l.Mean) / Math.Abs(l.Mean)) : "")]);
        return new ReportTable("Table 1: test scores (mean ± std over seeds, best learning rate on dev)", ["method", .. tasks], rows);
    }

    public static ReportTable Table3(IReadOnlyList<CellSummary> cells)
    {
        var byLength = ChainLengthCells(cells);
        var lengths = byLength.Select(c => c.Length).Distinct().Order().ToList();
        var rows = TasksOf(cells).Select(t => (IReadOnlyList<string>)[t, .. lengths.Select(l =>
            byLength.FirstOrDefault(c => c.Cell.Task == t && c.Length == l).Cell is { } c ? Score(c) : "")]).ToList();
        return new ReportTable("Table 3: chain length (1 = LoRA)", ["task", .. lengths.Select(l => $"chain length {l}")], rows);
    }

    /// <summary>LoRA and COLA cells with one rank for every link and AdamW, by chain length.</summary>
    public static List<(int Length, CellSummary Cell)> ChainLengthCells(IReadOnlyList<CellSummary> cells) => cells
        .Where(c => c.Example.Kind.HasChain() && c.Example.Optimizer == OptimizerKind.AdamW && (c.Example.Ranks is null || c.Example.Ranks.Distinct().Count() == 1))
        .Select(c => (c.Example.ChainLength, c)).ToList();

    public static ReportTable Table4(IReadOnlyList<CellSummary> cells)
    {
        var lora = LoraMethod(cells);
        var rows = new List<IReadOnlyList<string>>();
        foreach (var t in TasksOf(cells))
        {
            var baseline = lora is null ? null : Find(cells, t, lora);
            foreach (var c in cells.Where(c => c.Task == t && c.Example.Kind.HasChain() && c.Example.Optimizer == OptimizerKind.AdamW))
            {
                var ranks = c.Example.Ranks is { Count: > 0 } r ? string.Join(",", r) : $"{c.Example.Rank}";
                var saved = baseline is { Flops: > 0 } ? string.Format(Inv, "{0:+0.0;-0.0}%", 100 * (baseline.Flops - c.Flops) / baseline.Flops) : "";
                rows.Add([t, c.Method, ranks, Score(c), string.Format(Inv, "{0:F2}", c.Flops / 1e12), saved]);
            }
        }
        return new ReportTable("Table 4: rank step-down (training FLOPs saved against LoRA)",
            ["task", "method", "ranks", "test", "training TFLOPs", "FLOPs saved"], rows);
    }

    public static ReportTable Table5(IReadOnlyList<CellSummary> cells)
    {
        var trained = cells.Where(c => c.Example.Kind.HasChain()).ToList();
        var optimizers = trained.Select(c => c.Example.Optimizer).Distinct().ToList();
        var rows = new List<IReadOnlyList<string>>();
        foreach (var opt in optimizers)
            foreach (var m in trained.Where(c => c.Example.Optimizer == opt).Select(c => c.Method).Distinct())
                rows.Add([EnumNames.Name(opt), m, .. TasksOf(cells).Select(t => Find(cells, t, m) is { } c ? Score(c) : "")]);
        return new ReportTable("Table 5: optimizers", ["optimizer", "method", .. TasksOf(cells)], rows);
    }

    /// <summary>Writes tables (markdown, one CSV each) and plots into <paramref name="outDir"/>; returns the files written.</summary>
    public static List<string> Write(IReadOnlyList<CellSummary> cells, IReadOnlyList<JobResult> results, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var tables = new[] { ("table1", Table1(cells)), ("table3", Table3(cells)), ("table4", Table4(cells)), ("table5", Table5(cells)) };
        var files = new List<string>();
        var md = new StringBuilder("# Results\n\nGenerated by `chainlora report`; scores are accuracy / F1 in percent, lm is NLL per token.\n\n");
        foreach (var (name, table) in tables)
        {
            md.Append(table.Markdown()).Append('\n');
            var csv = Path.Combine(outDir, $"{name}.csv");
            AtomicFile.WriteAllText(csv, table.Csv());
            files.Add(csv);
        }
        files.AddRange(Plots.Write(cells, results, outDir));
        foreach (var png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
            md.Append($"![{Path.GetFileNameWithoutExtension(png)}]({Path.GetFileName(png)})\n\n");
        var mdPath = Path.Combine(outDir, "results.md");
        AtomicFile.WriteAllText(mdPath, md.ToString());
        files.Insert(0, mdPath);
        return files;
    }
}
