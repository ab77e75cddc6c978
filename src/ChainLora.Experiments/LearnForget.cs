// "LoRA Learns Less and Forgets Less" (Biderman et al. 2024) on the lm task: what each row gained on
// the target text against what it lost on the model's own domain. The zero-shot row is the pretrained
// model (its test NLL and its source NLL, scored on the same fixed sample of TinyStories windows);
// per seed, learning = NLL_target(pretrained) - NLL_target(row) and forgetting = NLL_source(row) -
// NLL_source(pretrained). Beside them, what a chain built: the effective rank of the accumulated
// delta W at the end of each link (DeltaSpectrum, recorded in result.json).
using System.Globalization;

namespace ChainLora.Experiments;

/// <summary>One trained row's learning and forgetting over seeds (NLL per token, each a paired difference against the pretrained model).</summary>
public sealed record LearnForgetPoint(CellSummary Cell, PairedDifference Learning, PairedDifference Forgetting);

public static class LearnForget
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Every trained lm row with source scores, against its task's zero-shot row; empty without one.</summary>
    public static List<LearnForgetPoint> Points(IReadOnlyList<CellSummary> cells)
    {
        var points = new List<LearnForgetPoint>();
        foreach (var baseline in cells.Where(c => c.Example.Kind == MethodKind.ZeroShot && c.Metric == "-nll" && c.Runs.All(r => r.SourceNll is not null)))
        {
            var bySeed = baseline.Runs.GroupBy(r => r.Spec.Seed).ToDictionary(g => g.Key, g => g.First());
            foreach (var cell in cells.Where(c => c.Task == baseline.Task && c.Example.Kind.Trains() && c.Runs.Any(r => r.SourceNll is not null)))
            {
                var runs = cell.Runs.Where(r => r.SourceNll is not null && bySeed.ContainsKey(r.Spec.Seed)).OrderBy(r => r.Spec.Seed).ToList();
                if (runs.Count == 0) continue;
                var seeds = runs.Select(r => r.Spec.Seed).ToList();
                // Test is oriented higher-is-better (minus the NLL): the gain is the row's minus the pretrained model's.
                var learning = new PairedDifference(seeds, runs.Select(r => r.Test - bySeed[r.Spec.Seed].Test).ToList());
                var forgetting = new PairedDifference(seeds, runs.Select(r => r.SourceNll!.Value - bySeed[r.Spec.Seed].SourceNll!.Value).ToList());
                points.Add(new LearnForgetPoint(cell, learning, forgetting));
            }
        }
        return points;
    }

    static string MeanInterval(PairedDifference d) => double.IsNaN(d.HalfWidth)
        ? string.Format(Inv, "{0:+0.0000;-0.0000;0.0000}", d.Mean)
        : string.Format(Inv, "{0:+0.0000;-0.0000;0.0000} [{1:+0.0000;-0.0000;0.0000}, {2:+0.0000;-0.0000;0.0000}]", d.Mean, d.Low, d.High);

    /// <summary>The table of <see cref="Points"/>: learning and forgetting with their 95% t intervals; null without points.</summary>
    public static ReportTable? Table(IReadOnlyList<CellSummary> cells)
    {
        var points = Points(cells);
        if (points.Count == 0) return null;
        var rows = points.Select(p => (IReadOnlyList<string>)[p.Cell.Task, p.Cell.Method, Reports.Score(p.Cell),
            string.Format(Inv, "{0:F4}", p.Cell.Runs.Where(r => r.SourceNll is not null).Average(r => r.SourceNll!.Value)),
            MeanInterval(p.Learning), MeanInterval(p.Forgetting), $"{p.Learning.Count}"]).ToList();
        return new ReportTable("Learning against forgetting: target NLL gained and source (TinyStories) NLL lost against the pretrained model, " +
            "paired over seeds (mean [95% t interval])",
            ["task", "method", "test NLL", "source NLL", "target NLL gained", "source NLL lost", "seeds"], rows);
    }

    /// <summary>Per LoRA or COLA row: the accumulated delta W's effective rank at the end of each link, mean over seeds; null when none recorded it.</summary>
    public static ReportTable? EffectiveRanks(IReadOnlyList<CellSummary> cells)
    {
        var rows = new List<IReadOnlyList<string>>();
        foreach (var cell in cells.Where(c => c.Example.Kind.HasChain()))
        {
            var runs = cell.Runs.Where(r => r.DeltaEffectiveRanks is not null).ToList();
            if (runs.Count == 0) continue;
            var links = runs.Min(r => r.DeltaEffectiveRanks!.Count);
            var perLink = Enumerable.Range(0, links).Select(i => string.Format(Inv, "{0:F2}", runs.Average(r => r.DeltaEffectiveRanks![i])));
            rows.Add([cell.Task, cell.Method, Reports.AlphaPolicy(cell.Example), string.Join(", ", perLink), $"{runs.Count}"]);
        }
        return rows.Count == 0 ? null
            : new ReportTable("Effective rank of the accumulated delta W at the end of each link (mean over adapted layers, then over seeds)",
                ["task", "method", "alpha policy", "after link 1, 2, ...", "seeds"], rows);
    }
}
