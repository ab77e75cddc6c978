// Is a row's learning rate tuned? The rate is chosen on dev (mean over seeds); the choice is
// bracketed only when it is interior to the row's grid and both neighbours ran on every seed the
// chosen rate ran on (and so lost to it on dev). A choice at an edge says the grid is too narrow:
// the best rate may lie beyond it. "LoRA Without Regret" (Schulman et al., Thinking Machines 2025)
// finds LoRA's best rate about 10x full fine-tuning's, roughly independent of rank (alpha fixed,
// scale alpha / r); the report gives the ratio this study measured.
using System.Globalization;
using System.Text;
using ChainLora.IO;

namespace ChainLora.Experiments;

/// <summary>Where a row's chosen learning rate sits in its grid.</summary>
public enum RateBracket
{
    /// <summary>Both neighbours ran on every seed of the choice and lost on dev.</summary>
    Interior,
    /// <summary>The lowest rate of the grid: a lower one might be better.</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("bottom edge")]
    BottomEdge,
    /// <summary>The highest rate of the grid: a higher one might be better.</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("top edge")]
    TopEdge,
    /// <summary>Interior, but a neighbour has not run on every seed the choice ran on.</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("neighbour missing")]
    NeighbourMissing,
    /// <summary>The row ran one rate: nothing was tuned.</summary>
    [System.Text.Json.Serialization.JsonStringEnumMemberName("one rate")]
    OneRate,
}

/// <summary>
/// One rate of a row: the seeds finished there, their mean dev score (higher is better; null without dev;
/// -infinity when a run diverged) over the <paramref name="Compared"/> seeds every rate of the row ran
/// (<see cref="LearningRates.Choose"/>), and how many of them diverged.
/// </summary>
public sealed record RateScore(double Rate, int Seeds, double? MeanDev, int Diverged = 0, int Compared = 0);

/// <summary>A row's grid (planned rates included, sorted), the rate chosen on dev and where it sits.</summary>
public sealed record RateChoice(IReadOnlyList<RateScore> Grid, double Chosen, RateBracket Bracket)
{
    public bool Bracketed => Bracket == RateBracket.Interior;

    /// <summary>
    /// The choice among <paramref name="runs"/> (one row, every rate) at <paramref name="chosen"/>, with
    /// <paramref name="planned"/> rates of the row that have not finished yet.
    /// </summary>
    public static RateChoice Of(IReadOnlyList<JobResult> runs, double chosen, IEnumerable<double> planned)
    {
        var byRate = runs.GroupBy(r => r.Spec.LearningRate).ToDictionary(g => g.Key, g => g.ToList());
        var common = LearningRates.CommonSeeds(runs);
        var grid = byRate.Keys.Union(planned).Distinct().Order().Select(rate =>
        {
            if (!byRate.TryGetValue(rate, out var at)) return new RateScore(rate, 0, null);
            var compared = LearningRates.Compared(at, common);
            return new RateScore(rate, at.Select(r => r.Spec.Seed).Distinct().Count(),
                compared.All(r => r.Dev is not null) ? compared.Average(r => r.Dev!.Value) : null,
                at.Count(r => r.Dev is double.NegativeInfinity), compared.Count);
        }).ToList();
        var index = grid.FindIndex(g => g.Rate == chosen);
        // The neighbours must have run every seed the choice was compared on (and lost there).
        var seeds = LearningRates.Compared(byRate[chosen], common).Select(r => r.Spec.Seed).ToHashSet();
        bool Ran(int i) => byRate.TryGetValue(grid[i].Rate, out var at) && seeds.IsSubsetOf(at.Select(r => r.Spec.Seed));
        var bracket = grid.Count == 1 ? RateBracket.OneRate
            : index == 0 ? RateBracket.BottomEdge
            : index == grid.Count - 1 ? RateBracket.TopEdge
            : Ran(index - 1) && Ran(index + 1) ? RateBracket.Interior
            : RateBracket.NeighbourMissing;
        return new RateChoice(grid, chosen, bracket);
    }

    /// <summary>The mark a table puts beside a score whose rate is not bracketed; "" when it is.</summary>
    public string Mark => Bracketed ? "" : $" (lr: {EnumNames.Name(Bracket)})";
}

public static class LearningRates
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// The rate of one row's <paramref name="runs"/> with the best mean dev score (test where a run has no dev),
    /// the mean taken over the seeds every rate ran: a grid that searched its rates on a few seeds
    /// (<see cref="ExperimentConfig.RateSearchSeeds"/>) and ran the others at the choice alone is compared
    /// on the search seeds, so the choice's later seeds cannot move it. When no seed is common to every rate, each
    /// rate's mean is over all of its seeds. A tie goes to the lowest rate, whatever order the runs come in.
    /// </summary>
    public static double Choose(IReadOnlyList<JobResult> runs)
    {
        var common = CommonSeeds(runs);
        return runs.GroupBy(r => r.Spec.LearningRate).OrderBy(rate => rate.Key).MaxBy(rate =>
        {
            var scored = Compared(rate, common);
            return scored.All(r => r.Dev is not null) ? scored.Average(r => r.Dev!.Value) : scored.Average(r => r.Test);
        })!.Key;
    }

    /// <summary>The seeds on which every rate of one row's <paramref name="runs"/> finished.</summary>
    public static HashSet<long> CommonSeeds(IEnumerable<JobResult> runs)
    {
        HashSet<long>? common = null;
        foreach (var rate in runs.GroupBy(r => r.Spec.LearningRate))
        {
            var seeds = rate.Select(r => r.Spec.Seed).ToHashSet();
            if (common is null) common = seeds;
            else common.IntersectWith(seeds);
        }
        return common ?? [];
    }

    /// <summary>The runs of one rate that are compared with the others: those on <paramref name="common"/> seeds, or all when none is common.</summary>
    public static List<JobResult> Compared(IEnumerable<JobResult> rate, IReadOnlySet<long> common) =>
        common.Count > 0 ? rate.Where(r => common.Contains(r.Spec.Seed)).ToList() : rate.ToList();

    static string Rate(double x) => x.ToString("G3", Inv).Replace("E", "e", StringComparison.Ordinal);

    /// <summary>Every trained row of <paramref name="cells"/>: its grid with the dev score at each rate, the choice and whether it is bracketed.</summary>
    public static ReportTable Table(IReadOnlyList<CellSummary> cells, string suffix = "")
    {
        var rows = new List<IReadOnlyList<string>>();
        foreach (var c in cells.Where(c => c.Rates is not null))
        {
            var choice = c.Rates!;
            var grid = string.Join(", ", choice.Grid.Select(g =>
                $"{Rate(g.Rate)}{(g.Rate == choice.Chosen ? "*" : "")}: " + (g.Seeds == 0 ? "not run"
                    : g.Diverged > 0 ? $"diverged on {g.Diverged} of {g.Seeds} seed{(g.Seeds == 1 ? "" : "s")}"
                    : (g.MeanDev is { } dev ? Reports.MetricValue(c.Metric, dev) : "no dev") + $" ({g.Seeds} seed{(g.Seeds == 1 ? "" : "s")}"
                        + (g.Compared < g.Seeds ? $", compared on {g.Compared})" : ")"))));
            rows.Add([c.Task, c.Method, EnumNames.Name(c.Example.Options.Trainer.Optimizer), c.Example.Kind.HasChain() ? Reports.AlphaPolicy(c.Example) : "-",
                grid, Rate(choice.Chosen), choice.Bracketed ? "yes" : $"no: {EnumNames.Name(choice.Bracket)}"]);
        }
        return new ReportTable($"Learning rates chosen on dev (* = chosen; mean dev score per rate){suffix}",
            ["task", "method", "optimizer", "alpha policy", "grid", "chosen", "bracketed"], rows);
    }

    /// <summary>
    /// Best LoRA rate over best full fine-tuning rate, per LoRA row of the same optimizer, task and budget
    /// as a full fine-tuning row ("LoRA Without Regret": about 10). A ratio with an unbracketed side is a
    /// bound (at a top edge the true best may be higher) or unknown; it says which. Null without full fine-tuning.
    /// </summary>
    public static ReportTable? Ratio(IReadOnlyList<CellSummary> cells, string suffix = "")
    {
        var rows = new List<IReadOnlyList<string>>();
        foreach (var full in cells.Where(c => c.Example.Kind == MethodKind.Full && c.Rates is not null))
            foreach (var lora in cells.Where(c => c.Example.Kind == MethodKind.Lora && c.Rates is not null && c.Task == full.Task
                && c.Example.Options.Trainer.Optimizer == full.Example.Options.Trainer.Optimizer
                && (c.Example.Options.Trainer.Epochs, c.Example.Options.BatchSize, c.Example.Options.Sizes.Train) == (full.Example.Options.Trainer.Epochs, full.Example.Options.BatchSize, full.Example.Options.Sizes.Train)))
            {
                var ratio = lora.Rates!.Chosen / full.Rates!.Chosen;
                rows.Add([lora.Task, lora.Method, Reports.AlphaPolicy(lora.Example), Rate(lora.Rates.Chosen) + lora.Rates.Mark, full.Method,
                    Rate(full.Rates.Chosen) + full.Rates.Mark, RatioText(ratio, lora.Rates.Bracket, full.Rates.Bracket)]);
            }
        return rows.Count == 0 ? null
            : new ReportTable($"Best LoRA learning rate / best full fine-tuning learning rate (LoRA Without Regret: about 10){suffix}",
                ["task", "LoRA", "alpha policy", "LoRA lr", "full fine-tuning", "full lr", "ratio"], rows);
    }

    /// <summary>The ratio, or the bound it is when a side sits at an edge of its grid.</summary>
    public static string RatioText(double ratio, RateBracket lora, RateBracket full)
    {
        var value = ratio.ToString("G3", Inv);
        if (lora == RateBracket.Interior && full == RateBracket.Interior) return value;
        // LoRA's best may be higher at its top edge (ratio larger), full's lower at its bottom edge (ratio larger).
        var atLeast = lora == RateBracket.TopEdge || full == RateBracket.BottomEdge;
        var atMost = lora == RateBracket.BottomEdge || full == RateBracket.TopEdge;
        var unknown = lora is RateBracket.OneRate or RateBracket.NeighbourMissing || full is RateBracket.OneRate or RateBracket.NeighbourMissing;
        return unknown || (atLeast && atMost) ? $"{value} (not bracketed)" : atLeast ? $">= {value}" : $"<= {value}";
    }

    /// <summary>One line per trained row whose choice is not bracketed, for `chainlora report` to print.</summary>
    public static IEnumerable<string> Warnings(IReadOnlyList<CellSummary> cells) => cells
        .Where(c => c.Rates is { Bracketed: false })
        .Select(c => new StringBuilder($"{c.Task} {c.Method}: learning rate {Rate(c.Rates!.Chosen)} is not bracketed ({EnumNames.Name(c.Rates.Bracket)}; grid ")
            .AppendJoin(", ", c.Rates.Grid.Select(g => Rate(g.Rate) + (g.Seeds == 0 ? " not run" : ""))).Append(')').ToString());
}
