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

    /// <summary>The table as an HTML section (cells escaped).</summary>
    public string Html()
    {
        static string E(string s) => System.Net.WebUtility.HtmlEncode(s);
        var sb = new StringBuilder($"<section>\n<h3>{E(Title)}</h3>\n<table>\n<thead><tr>");
        foreach (var h in Header) sb.Append($"<th>{E(h)}</th>");
        sb.Append("</tr></thead>\n<tbody>\n");
        foreach (var r in Rows) sb.Append("<tr>").Append(string.Concat(r.Select(c => $"<td>{E(c)}</td>"))).Append("</tr>\n");
        return sb.Append("</tbody>\n</table>\n</section>\n").ToString();
    }

    public string Csv()
    {
        static string Q(string s) => s.Contains(',') || s.Contains('"') ? $"\"{s.Replace("\"", "\"\"")}\"" : s;
        return string.Join("\n", new[] { Header }.Concat(Rows).Select(r => string.Join(",", r.Select(Q)))) + "\n";
    }
}

/// <summary>
/// Trained cells that share a budget (epochs, batch size and train set): the paper's ablation tables
/// compare within one. Its standard cells use AdamW, Algorithm 1 as published with fixed knots, the
/// study's train set and the rank of its LoRA at that size. <paramref name="Tag"/> tells studies
/// apart when there are several.
/// </summary>
public sealed record Study(int Epochs, int BatchSize, int NumTrain, int Rank, IReadOnlyList<CellSummary> Cells, string? Tag)
{
    public string Suffix => Tag is null ? "" : $" ({Tag})";

    /// <summary>Appended to a study's file names: "", "-8ep", or "-8ep-n1600" when studies share their epochs.</summary>
    public string FileSuffix => Tag is null ? "" : Tag.Contains(',') ? $"-{Epochs}ep-n{NumTrain}" : $"-{Epochs}ep";

    /// <summary>The budget and data of the study, any method.</summary>
    public bool IsStandardBudget(CellSummary c) =>
        c.Example is { Options: { Trainer: { Optimizer: OptimizerKind.AdamW, Variant: ColaVariant.Paper }, Chain.Auto: null } } && c.Example.Options.Sizes.Train == NumTrain;

    public bool IsStandard(CellSummary c) => IsStandardBudget(c) && c.Example.Options.Lora.Rank == Rank;

    /// <summary>
    /// Groups by epochs and batch size, then by train set: a size with at least three methods (or
    /// the largest) is a study of its own, and a smaller size with fewer methods (the low-data rows
    /// of Table 6) joins the next larger study.
    /// </summary>
    public static List<Study> Of(IReadOnlyList<CellSummary> cells)
    {
        var budgets = cells.Where(c => c.Example.Kind.Trains()).GroupBy(c => (c.Example.Options.Trainer.Epochs, c.Example.Options.BatchSize));
        var groups = new List<(int Epochs, int BatchSize, int NumTrain, List<CellSummary> Cells)>();
        foreach (var budget in budgets)
        {
            var methods = budget.GroupBy(c => c.Example.Options.Sizes.Train).ToDictionary(s => s.Key, s => s.Select(c => c.Method).Distinct().Count());
            var largest = methods.Keys.Max();
            var studySizes = methods.Keys.Where(n => n == largest || methods[n] >= 3).Order().ToList();
            groups.AddRange(studySizes.Select(size => (budget.Key.Epochs, budget.Key.BatchSize, size,
                budget.Where(c => studySizes.First(s => s >= c.Example.Options.Sizes.Train) == size).ToList())));
        }
        groups = [.. groups.OrderByDescending(g => g.Cells.Count)];
        return groups.Select(g =>
        {
            var loras = g.Cells.Where(c => c.Example.Kind == MethodKind.Lora && c.Example.Options.Sizes.Train == g.NumTrain).ToList();
            var rank = (loras.Count > 0 ? loras : g.Cells.Where(c => c.Example.Options.Sizes.Train == g.NumTrain)).Min(c => c.Example.Options.Lora.Rank);
            var tag = groups.Count == 1 ? null
                : groups.Count(o => o.Epochs == g.Epochs) > 1 ? $"{g.Epochs} epochs, {g.NumTrain} train" : $"{g.Epochs} epochs";
            return new Study(g.Epochs, g.BatchSize, g.NumTrain, rank, g.Cells, tag);
        }).ToList();
    }
}

public static class Reports
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Test mean ± std over seeds, marked when the row's learning rate is not bracketed (<see cref="RateChoice.Mark"/>).</summary>
    public static string Score(CellSummary c) => (c.Metric == "-nll"
        ? string.Format(Inv, "{0:F3} ± {1:F3}", -c.Mean, c.Std)
        : string.Format(Inv, "{0:F1} ± {1:F1}", 100 * c.Mean, 100 * c.Std)) + (c.Rates?.Mark ?? "");

    /// <summary>A higher-is-better score as shown: NLL per token (4 decimals) or a percentage.</summary>
    public static string MetricValue(string metric, double value) =>
        metric == "-nll" ? string.Format(Inv, "{0:F4}", -value) : string.Format(Inv, "{0:F1}", 100 * value);

    static IEnumerable<string> TasksOf(IReadOnlyList<CellSummary> cells) => cells.Select(c => c.Task).Distinct();

    static CellSummary? Find(IReadOnlyList<CellSummary> cells, string task, string method) =>
        cells.FirstOrDefault(c => c.Task == task && c.Method == method);

    /// <summary>
    /// The LoRA a chain is compared with: LoRA of the chain's optimizer, first link's rank and alpha, and
    /// the same budget (epochs, batch size, train examples), so a grid of several budgets compares like with like.
    /// </summary>
    public static CellSummary? ReferenceLora(IReadOnlyList<CellSummary> cells, CellSummary chain) => cells.FirstOrDefault(c =>
        c.Task == chain.Task && c.Example.Kind == MethodKind.Lora && c.Example.Options.Trainer.Optimizer == chain.Example.Options.Trainer.Optimizer && c.Example.Options.Lora.Rank == chain.Example.Options.Lora.Rank
        && c.Example.Options.Lora.Alpha == chain.Example.Options.Lora.Alpha && c.Example.Options.Lora.UseRsLora == chain.Example.Options.Lora.UseRsLora
        && (c.Example.Options.Trainer.Epochs, c.Example.Options.BatchSize, c.Example.Options.Sizes.Train) == (chain.Example.Options.Trainer.Epochs, chain.Example.Options.BatchSize, chain.Example.Options.Sizes.Train));

    static string? LoraFor(IReadOnlyList<CellSummary> cells, CellSummary chain) => ReferenceLora(cells, chain)?.Method;

    /// <summary>
    /// <paramref name="a"/> against <paramref name="b"/>, paired by seed at each one's chosen learning rate, in the
    /// metric's own units (NLL per token, or points of accuracy / F1): "mean [95% t interval]" and the finding, which
    /// is "no difference found" wherever the interval covers 0. <paramref name="nameA"/> and <paramref name="nameB"/> name the sides.
    /// </summary>
    public static string Compare(CellSummary a, CellSummary b, string nameA, string nameB, bool dev = false)
    {
        var d = PairedDifference.Of(a.Runs, b.Runs, dev);
        if (d.Count == 0) return "";
        // Scores are oriented higher-is-better; NLL is shown as itself, so its differences change sign.
        var nll = a.Metric == "-nll";
        string U(double x) => nll ? string.Format(Inv, "{0:+0.0000;-0.0000;0.0000}", -x) : string.Format(Inv, "{0:+0.00;-0.00;0.00}", 100 * x);
        var interval = double.IsNaN(d.HalfWidth) ? "" : nll ? $" [{U(d.High)}, {U(d.Low)}]" : $" [{U(d.Low)}, {U(d.High)}]";
        return $"{U(d.Mean)}{interval} {d.Finding(nameA, nameB)}";
    }

    /// <summary>What a difference column says: chain minus LoRA, paired over seeds, with its 95% t interval.</summary>
    static string DeltaTitle(string metric) =>
        $"{(metric == "-nll" ? "Δ NLL" : "Δ points")} vs LoRA (paired over seeds, mean [95% t interval])";

    public static ReportTable Table1(IReadOnlyList<CellSummary> cells)
    {
        var tasks = TasksOf(cells).ToList();
        var methods = cells.Select(c => c.Method).Distinct().ToList();
        var rows = methods.Select(m => (IReadOnlyList<string>)[m, .. tasks.Select(t => Find(cells, t, m) is { } c ? Score(c) : "")]).ToList();
        var chains = cells.Where(c => c.Example.Kind == MethodKind.Cola && c.Example.Options.Trainer.Optimizer == OptimizerKind.AdamW && c.Example.Options.Chain.Ranks is null)
            .DistinctBy(c => c.Method).ToList();
        foreach (var chain in chains)
            if (LoraFor(cells, chain) is { } lora)
            {
                rows.Add([$"relative gain of {chain.Method} over {lora}", .. tasks.Select(t =>
                    Find(cells, t, chain.Method) is { } c && Find(cells, t, lora) is { } l && l.Mean != 0
                        ? string.Format(Inv, "{0:+0.00;-0.00}%", 100 * (c.Mean - l.Mean) / Math.Abs(l.Mean)) : "")]);
                rows.Add([$"{chain.Method} - {lora}, paired over seeds (mean [95% t interval])", .. tasks.Select(t =>
                    Find(cells, t, chain.Method) is { } c && Find(cells, t, lora) is { } l ? Compare(c, l, "chain", "LoRA") : "")]);
            }
        return new ReportTable("Table 1: test scores (mean ± std over seeds, best learning rate on dev)", ["method", .. tasks], rows);
    }

    public static ReportTable Table3(Study study)
    {
        var byLength = ChainLengthCells(study);
        var lengths = byLength.Select(c => c.Length).Distinct().Order().ToList();
        var rows = new List<IReadOnlyList<string>>();
        foreach (var t in TasksOf(study.Cells))
        {
            CellSummary? At(int length) => byLength.FirstOrDefault(c => c.Cell.Task == t && c.Length == length).Cell;
            rows.Add([t, .. lengths.Select(l => At(l) is { } c ? Score(c) : "")]);
            if (At(1) is { } lora)
                rows.Add([$"{t}: {DeltaTitle(lora.Metric)}", .. lengths.Select(l => l > 1 && At(l) is { } c ? Compare(c, lora, "chain", "LoRA") : "")]);
        }
        return new ReportTable($"Table 3: chain length (1 = LoRA){study.Suffix}", ["task", .. lengths.Select(l => $"chain length {l}")], rows);
    }

    /// <summary>The study's standard LoRA and COLA cells with one rank for every link, by chain length.</summary>
    public static List<(int Length, CellSummary Cell)> ChainLengthCells(Study study) => study.Cells
        .Where(c => c.Example.Kind.HasChain() && study.IsStandard(c) && Uniform(c.Example))
        .Select(c => (c.Example.Options.Chain.Links, c)).ToList();

    static bool Uniform(JobSpec spec) => spec.Options.Chain.Ranks is null || spec.Options.Chain.Ranks.Distinct().Count() == 1;

    static string LinkRanks(JobSpec spec) => spec.Options.Chain.Ranks is { Count: > 0 } r ? string.Join(",", r) : $"{spec.Options.Lora.Rank}";

    public static ReportTable Table4(Study study)
    {
        var rows = new List<IReadOnlyList<string>>();
        foreach (var t in TasksOf(study.Cells))
        {
            var baseline = study.Cells.FirstOrDefault(c => c.Task == t && study.IsStandard(c) && c.Example.Kind == MethodKind.Lora);
            var stepDown = study.Cells.Where(c => c.Task == t && study.IsStandardBudget(c) && c.Example.Kind.HasChain() && c.Example.Options.Lora.Rank == study.Rank
                && (c.Example.Kind == MethodKind.Lora || c.Example.Options.Chain.Links == 2));
            foreach (var c in stepDown)
            {
                var saved = baseline is { Flops: > 0 } ? string.Format(Inv, "{0:+0.0;-0.0}%", 100 * (baseline.Flops - c.Flops) / baseline.Flops) : "";
                var delta = baseline is not null && c != baseline ? Compare(c, baseline, "chain", "LoRA") : "";
                rows.Add([t, c.Method, LinkRanks(c.Example), Score(c), string.Format(Inv, "{0:F2}", c.Flops / 1e12), saved, delta]);
            }
        }
        return new ReportTable($"Table 4: rank step-down (training FLOPs saved against LoRA){study.Suffix}",
            ["task", "method", "ranks", "test", "training TFLOPs", "FLOPs saved", DeltaTitle(study.Cells[0].Metric)], rows);
    }

    public static ReportTable Table5(Study study)
    {
        var trained = study.Cells.Where(c => c.Example.Kind.HasChain() && c.Example is { Options: { Trainer.Variant: ColaVariant.Paper, Chain.Auto: null } }
            && c.Example.Options.Sizes.Train == study.NumTrain && c.Example.Options.Lora.Rank == study.Rank && Uniform(c.Example)).ToList();
        var rows = new List<IReadOnlyList<string>>();
        var tasks = TasksOf(study.Cells).ToList();
        foreach (var opt in trained.Select(c => c.Example.Options.Trainer.Optimizer).Distinct())
        {
            var methods = trained.Where(c => c.Example.Options.Trainer.Optimizer == opt).Select(c => c.Method).Distinct().ToList();
            CellSummary? Cell(string task, string method) => trained.FirstOrDefault(c => c.Task == task && c.Method == method);
            foreach (var m in methods)
                rows.Add([EnumNames.Name(opt), m, .. tasks.Select(t => Cell(t, m) is { } c ? Score(c) : "")]);
            // Each chain against the LoRA of its own optimizer.
            foreach (var m in methods)
                if (trained.First(c => c.Method == m).Example.Kind == MethodKind.Cola)
                    rows.Add([EnumNames.Name(opt), $"{m} - LoRA, paired (mean [95% t interval])", .. tasks.Select(t =>
                        Cell(t, m) is { } c && ReferenceLora(trained, c) is { } lora ? Compare(c, lora, "chain", "LoRA") : "")]);
        }
        return new ReportTable($"Table 5: optimizers{study.Suffix}", ["optimizer", "method", .. TasksOf(study.Cells)], rows);
    }

    /// <summary>How a row's alpha is set, in words: rsLoRA, alpha = 2r, or a fixed alpha (scale alpha / r).</summary>
    public static string AlphaPolicy(JobSpec spec) =>
        spec.Options.Lora.UseRsLora ? $"rsLoRA, alpha {spec.Options.Lora.Alpha.ToString("G4", Inv)} (scale {(spec.Options.Lora.Alpha / Math.Sqrt(spec.Options.Lora.Rank)).ToString("G3", Inv)})"
        : spec.Options.Lora.Alpha == 2 * spec.Options.Lora.Rank ? $"alpha = 2r ({spec.Options.Lora.Alpha.ToString("G4", Inv)})"
        : $"alpha {spec.Options.Lora.Alpha.ToString("G4", Inv)} fixed (scale {(spec.Options.Lora.Alpha / spec.Options.Lora.Rank).ToString("G3", Inv)})";

    /// <summary>
    /// The alpha policies a LoRA or COLA row follows: rsLoRA with its alpha; else a fixed alpha (scale
    /// alpha / r), and also alpha = 2r when its alpha is twice its rank. The reference rank's row
    /// (rank 8, alpha 16) is thus in both "alpha = 2r" and "alpha 16 fixed".
    /// </summary>
    public static IReadOnlyList<string> AlphaPolicies(JobSpec s)
    {
        var alpha = s.Options.Lora.Alpha.ToString("G4", Inv);
        return s.Options.Lora.UseRsLora ? [$"rsLoRA, alpha {alpha}"] : s.Options.Lora.Alpha == 2 * s.Options.Lora.Rank ? ["alpha = 2r", $"alpha {alpha} fixed"] : [$"alpha {alpha} fixed"];
    }

    /// <summary>
    /// Table 6 (train set size) or 8 (rank): standard cells but for <paramref name="axis"/>, by chain
    /// length. With <paramref name="byPolicy"/> (rank), rows come in a block per alpha policy that has
    /// cells at two or more values, so a rank's scale never mixes policies.
    /// </summary>
    static ReportTable? ByAxis(Study study, string title, string column, Func<CellSummary, bool> keep, Func<JobSpec, int> axis, bool byPolicy = false)
    {
        var cells = study.Cells.Where(c => c.Example.Kind.HasChain() && c.Example is { Options: { Trainer: { Optimizer: OptimizerKind.AdamW, Variant: ColaVariant.Paper }, Chain.Auto: null } }
            && Uniform(c.Example) && keep(c)).ToList();
        var values = cells.Select(c => axis(c.Example)).Distinct().Order().ToList();
        if (values.Count < 2) return null;
        List<string?> policies = byPolicy
            ? [.. cells.SelectMany(c => AlphaPolicies(c.Example)).Distinct()
                .Where(p => cells.Where(c => AlphaPolicies(c.Example).Contains(p)).Select(c => axis(c.Example)).Distinct().Count() >= 2)]
            : [];
        if (policies.Count < 2) policies = [null];
        var rows = new List<IReadOnlyList<string>>();
        foreach (var t in TasksOf(cells))
            foreach (var policy in policies)
            {
                var inPolicy = policy is null ? cells : cells.Where(c => AlphaPolicies(c.Example).Contains(policy)).ToList();
                var label = policy is null ? "" : $" ({policy})";
                CellSummary? At(int length, int v) => inPolicy.FirstOrDefault(c => c.Task == t && c.Example.Options.Chain.Links == length && axis(c.Example) == v);
                var lengths = inPolicy.Where(c => c.Task == t).Select(c => c.Example.Options.Chain.Links).Distinct().Order().ToList();
                foreach (var length in lengths)
                    rows.Add([t, (length == 1 ? "LoRA" : $"COLA M={length}") + label, .. values.Select(v => At(length, v) is { } c ? Score(c) : "")]);
                foreach (var length in lengths.Where(l => l > 1))
                    rows.Add([t, $"COLA M={length} - LoRA{label}, paired (mean [95% t interval])", .. values.Select(v =>
                        At(length, v) is { } c && At(1, v) is { } lora ? Compare(c, lora, "chain", "LoRA") : "")]);
            }
        return new ReportTable(title + study.Suffix, ["task", "method", .. values.Select(v => $"{column} {v}")], rows);
    }

    public static ReportTable? Table6(Study study) =>
        ByAxis(study, "Table 6: training set size", "n =", c => c.Example.Options.Lora.Rank == study.Rank && !c.Example.Options.Lora.UseRsLora, s => s.Options.Sizes.Train);

    public static ReportTable? Table8(Study study) =>
        ByAxis(study, "Table 8: LoRA rank", "r =", c => c.Example.Options.Sizes.Train == study.NumTrain, s => s.Options.Lora.Rank, byPolicy: true);

    /// <summary>
    /// Beyond the paper: every run at the reference rank's memory (links of rank at most the study's
    /// rank) against LoRA at that rank and LoRA at four times it (else the largest LoRA rank run):
    /// share closed = (NLL_LoRA_r - NLL_run) / (NLL_LoRA_r - NLL_LoRA_4r), per seed, then mean ± std
    /// and the 95% t interval of the mean; beside it the run's NLL against LoRA at rank r, paired by
    /// seed (<see cref="Compare"/>). The best on dev is marked: a variant is chosen on dev, never on test.
    /// </summary>
    public static ReportTable? ShareClosed(Study study) => ShareClosedTables(study).FirstOrDefault();

    /// <summary>
    /// <see cref="ShareClosed(Study)"/> once per LoRA at four times the rank (else the largest rank run), one
    /// for each alpha policy it was run with: the gap depends on how alpha follows the rank.
    /// </summary>
    public static List<ReportTable> ShareClosedTables(Study study)
    {
        var loras = study.Cells.Where(c => c.Example.Kind == MethodKind.Lora && c.Example is { Options.Trainer.Optimizer: OptimizerKind.AdamW }
            && c.Example.Options.Sizes.Train == study.NumTrain).ToList();
        // The reference at rank r: the plain (not rsLoRA) one when both ran; the chains share it.
        var small = loras.Where(c => c.Example.Options.Lora.Rank == study.Rank).OrderBy(c => c.Example.Options.Lora.UseRsLora).FirstOrDefault();
        var largeRank = loras.Any(c => c.Example.Options.Lora.Rank == 4 * study.Rank) ? 4 * study.Rank
            : loras.Where(c => c.Example.Options.Lora.Rank > study.Rank).Select(c => c.Example.Options.Lora.Rank).DefaultIfEmpty(0).Max();
        if (small is null || largeRank == 0) return [];
        return [.. loras.Where(c => c.Example.Options.Lora.Rank == largeRank).OrderBy(c => c.Method, StringComparer.Ordinal)
            .Select(large => ShareClosed(study, small, large)).OfType<ReportTable>()];
    }

    static ReportTable? ShareClosed(Study study, CellSummary small, CellSummary large)
    {
        // Chains trained as the two LoRAs were (AdamW, the study's train set); other optimizers have their own table.
        var candidates = study.Cells.Where(c => c.Task == small.Task && c.Example.Kind == MethodKind.Cola && c.Example.Options.Trainer.Optimizer == OptimizerKind.AdamW
            && c.Example.Options.Sizes.Train == study.NumTrain
            && (c.Example.Options.Chain.Ranks is { Count: > 0 } r ? r.Max() : c.Example.Options.Lora.Rank) <= study.Rank).ToList();
        if (candidates.Count == 0) return null;
        static Dictionary<long, JobResult> BySeed(CellSummary c) => c.Runs.GroupBy(r => r.Spec.Seed).ToDictionary(g => g.Key, g => g.First());
        var (a, b) = (BySeed(small), BySeed(large));
        var bestOnDev = candidates.Where(c => c.Runs.All(r => r.Dev is not null)).MaxBy(c => c.Runs.Average(r => r.Dev!.Value));
        // Per seed shared by the three cells, then mean ± sample std; on dev as well, where the variant is chosen.
        static List<double> Shares(Dictionary<long, JobResult> run, Dictionary<long, JobResult> a, Dictionary<long, JobResult> b, Func<JobResult, double?> score) =>
            run.Where(kv => a.ContainsKey(kv.Key) && b.ContainsKey(kv.Key) && score(kv.Value) is not null && score(a[kv.Key]) is { } low
                    && score(b[kv.Key]) is { } high && high != low)
                .Select(kv => (score(kv.Value)!.Value - score(a[kv.Key])!.Value) / (score(b[kv.Key])!.Value - score(a[kv.Key])!.Value)).ToList();
        static string MeanStd(List<double> xs)
        {
            if (xs.Count == 0) return "";
            var d = new PairedDifference(Enumerable.Range(0, xs.Count).Select(i => (long)i).ToList(), xs);
            var interval = double.IsNaN(d.HalfWidth) ? "" : string.Format(Inv, " [{0:F2}, {1:F2}]", d.Low, d.High);
            return string.Format(Inv, "{0:F2} ± {1:F2}", d.Mean, d.StandardDeviation) + interval;
        }
        var rows = new List<IReadOnlyList<string>>();
        foreach (var c in candidates)
        {
            var shares = Shares(BySeed(c), a, b, r => r.Test);
            var devShares = Shares(BySeed(c), a, b, r => r.Dev);
            var dev = c.Runs.All(r => r.Dev is not null) ? string.Format(Inv, "{0:F4}", -c.Runs.Average(r => r.Dev!.Value)) : "";
            rows.Add([c.Method + (c == bestOnDev ? " (best on dev)" : ""), LinkRanks(c.Example), EnumNames.Name(c.Example.Options.Trainer.Variant), dev, MeanStd(devShares),
                Compare(c, small, "chain", small.Method, dev: true), Score(c), MeanStd(shares), Compare(c, small, "chain", small.Method), $"{shares.Count}"]);
        }
        return new ReportTable($"Share of the gap from {small.Method} to {large.Method} ({AlphaPolicy(large.Example)}) closed at rank-{study.Rank} memory{study.Suffix}",
            ["method", "ranks", "variant", "dev NLL (mean)", "share closed on dev (mean ± std [95% t])", $"Δ dev NLL vs {small.Method} (paired, [95% t])",
             "test", "share closed on test (mean ± std [95% t])", $"Δ test NLL vs {small.Method} (paired, [95% t])", "seeds"], rows);
    }

    /// <summary>
    /// Every chain of the study against its LoRA (<see cref="ReferenceLora"/>), seed by seed: the per-seed
    /// differences on test, their mean with the 95% t interval and the finding, and the same on dev.
    /// </summary>
    public static ReportTable? Paired(Study study)
    {
        var rows = new List<IReadOnlyList<string>>();
        foreach (var chain in study.Cells.Where(c => c.Example.Kind == MethodKind.Cola))
        {
            if (ReferenceLora(study.Cells, chain) is not { } lora) continue;
            var d = PairedDifference.Of(chain.Runs, lora.Runs);
            if (d.Count == 0) continue;
            var nll = chain.Metric == "-nll";
            var perSeed = string.Join(", ", d.Seeds.Zip(d.Differences, (s, x) =>
                string.Format(Inv, nll ? "s{0}: {1:+0.0000;-0.0000;0.0000}" : "s{0}: {1:+0.00;-0.00;0.00}", s, nll ? -x : 100 * x)));
            rows.Add([chain.Task, chain.Method, lora.Method, perSeed, Compare(chain, lora, "chain", "LoRA"), Compare(chain, lora, "chain", "LoRA", dev: true)]);
        }
        if (rows.Count == 0) return null;
        var units = study.Cells[0].Metric == "-nll" ? "NLL" : "points";
        return new ReportTable($"Paired differences, chain - LoRA in {units} per seed, mean [95% t interval]{study.Suffix}",
            ["task", "chain", "LoRA", "test, per seed", "test", "dev"], rows);
    }

    /// <summary>
    /// Writes tables (markdown, one CSV each), plots, and index.html (the tables and plots on one
    /// page, the PNGs inlined, nothing fetched from elsewhere) into <paramref name="outDir"/>; returns
    /// the files written.
    /// </summary>
    public static List<string> Write(IReadOnlyList<CellSummary> cells, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var studies = Study.Of(cells);
        var tables = new List<(string Name, ReportTable Table)> { ("table1", Table1(cells)), ("learning-rates", LearningRates.Table(cells)) };
        if (LearningRates.Ratio(cells) is { } ratio) tables.Add(("lr-ratio", ratio));
        if (LearnForget.Table(cells) is { } learnForget) tables.Add(("learn-forget", learnForget));
        if (LearnForget.EffectiveRanks(cells) is { } ranks) tables.Add(("effective-rank", ranks));
        foreach (var study in studies)
        {
            var suffix = study.FileSuffix;
            tables.AddRange(new (string, ReportTable?)[]
            {
                ("table3", Table3(study)), ("table4", Table4(study)), ("table5", Table5(study)), ("table6", Table6(study)),
                ("table8", Table8(study)), ("paired", Paired(study)),
            }.Where(t => t.Item2 is not null).Select(t => (t.Item1 + suffix, t.Item2!)));
            // One share-closed table per alpha policy of the larger LoRA: share-closed, share-closed-2, ...
            tables.AddRange(ShareClosedTables(study).Select((table, i) => ($"share-closed{(i == 0 ? "" : $"-{i + 1}")}{suffix}", table)));
        }
        var files = new List<string>();
        var md = new StringBuilder("# Results\n\nGenerated by `chainlora report`; scores are accuracy / F1 in percent, lm is NLL per token.\n\n");
        foreach (var (name, table) in tables)
        {
            md.Append(table.Markdown()).Append('\n');
            var csv = Path.Combine(outDir, $"{name}.csv");
            AtomicFile.WriteAllText(csv, table.Csv());
            files.Add(csv);
        }
        files.AddRange(Plots.Write(cells, studies, outDir));
        foreach (var png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
            md.Append($"![{Path.GetFileNameWithoutExtension(png)}]({Path.GetFileName(png)})\n\n");
        var mdPath = Path.Combine(outDir, "results.md");
        AtomicFile.WriteAllText(mdPath, md.ToString());
        var htmlPath = Path.Combine(outDir, "index.html");
        AtomicFile.WriteAllText(htmlPath, Html(tables.Select(t => t.Table), files.Where(f => f.EndsWith(".png", StringComparison.Ordinal))));
        files.Insert(0, mdPath);
        files.Insert(1, htmlPath);
        return files;
    }

    const string Style = """
        body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
        th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; }
        th { background: #eef; }
        tbody tr:nth-child(even) { background: #f7f7f7; }
        figure { margin: 1em 0; }
        img { max-width: 100%; border: 1px solid #ddd; }
        """;

    static string Html(IEnumerable<ReportTable> tables, IEnumerable<string> pngs)
    {
        var sb = new StringBuilder($"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>ChainLora results</title>\n<style>\n{Style}</style>\n</head>\n<body>\n");
        sb.Append("<h1>Results</h1>\n<p>Generated by <code>chainlora report</code>; scores are accuracy / F1 in percent, lm is NLL per token.</p>\n");
        foreach (var table in tables) sb.Append(table.Html());
        foreach (var png in pngs)
        {
            var name = System.Net.WebUtility.HtmlEncode(Path.GetFileNameWithoutExtension(png));
            sb.Append($"<figure>\n<img alt=\"{name}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(png))}\">\n<figcaption>{name}</figcaption>\n</figure>\n");
        }
        return sb.Append("</body>\n</html>\n").ToString();
    }
}
