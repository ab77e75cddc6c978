// PNG plots with ScottPlot: training loss with knot markers, test score against chain length with
// a std band (the paper's Figure 2), test score against the second link's rank (Figure 3), learning
// against forgetting (Biderman et al. 2024, Figure 1's axes), and the accumulated delta W's effective
// rank per link and its final spectrum.
using System.Text.Json.Nodes;
using ChainLora.IO;
using ScottPlot;

namespace ChainLora.Experiments;

public static class Plots
{
    public static List<string> Write(IReadOnlyList<CellSummary> cells, IReadOnlyList<Study> studies, string outDir)
    {
        var files = new List<string>();
        foreach (var task in cells.Select(c => c.Task).Distinct())
            if (LossCurves(cells.Where(c => c.Task == task).ToList(), Path.Combine(outDir, $"loss-{task}.png")) is { } f) files.Add(f);
        foreach (var study in studies)
        {
            var suffix = study.FileSuffix;
            if (ByChainLength(study, Path.Combine(outDir, $"chain-length{suffix}.png")) is { } g) files.Add(g);
            if (BySecondRank(study, Path.Combine(outDir, $"second-rank{suffix}.png")) is { } h) files.Add(h);
            // A study holds trained rows only; the pretrained baseline is the grid's zero-shot row.
            var withBaseline = cells.Where(c => c.Example.Kind == MethodKind.ZeroShot).Concat(study.Cells).ToList();
            if (LearningAgainstForgetting(withBaseline, Path.Combine(outDir, $"learn-forget{suffix}.png")) is { } lf) files.Add(lf);
            if (EffectiveRankPerLink(study.Cells, Path.Combine(outDir, $"effective-rank{suffix}.png")) is { } er) files.Add(er);
            if (FinalSpectra(study.Cells, Path.Combine(outDir, $"spectrum{suffix}.png")) is { } sp) files.Add(sp);
        }
        return files;
    }

    /// <summary>Each row's source NLL lost (x) against target NLL gained (y), mean over seeds with the 95% t interval as error bars.</summary>
    static string? LearningAgainstForgetting(IReadOnlyList<CellSummary> cells, string path)
    {
        var points = LearnForget.Points(cells);
        if (points.Count == 0) return null;
        var plot = new Plot();
        foreach (var p in points)
        {
            var x = p.Forgetting.Mean;
            var y = p.Learning.Mean;
            var marker = plot.Add.Marker(x, y);
            marker.LegendText = p.Cell.Method;
            marker.Size = 8;
            if (!double.IsNaN(p.Learning.HalfWidth) && !double.IsNaN(p.Forgetting.HalfWidth))
            {
                plot.Add.Line(x - p.Forgetting.HalfWidth, y, x + p.Forgetting.HalfWidth, y).Color = marker.Color;
                plot.Add.Line(x, y - p.Learning.HalfWidth, x, y + p.Learning.HalfWidth).Color = marker.Color;
            }
        }
        plot.Title("Learning against forgetting (mean, 95% t intervals over seeds)");
        plot.XLabel("source (TinyStories) NLL lost");
        plot.YLabel("target NLL gained");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(900, 600, ScottPlot.ImageFormat.Png));
        return path;
    }

    /// <summary>The accumulated delta W's effective rank at the end of each link, mean over seeds, per LoRA or COLA row.</summary>
    static string? EffectiveRankPerLink(IReadOnlyList<CellSummary> cells, string path)
    {
        var plot = new Plot();
        var any = false;
        foreach (var cell in cells.Where(c => c.Example.Kind.HasChain()))
        {
            var runs = cell.Runs.Where(r => r.DeltaEffectiveRanks is not null).ToList();
            if (runs.Count == 0) continue;
            var links = runs.Min(r => r.DeltaEffectiveRanks!.Count);
            var line = plot.Add.ScatterLine(Enumerable.Range(1, links).Select(i => (double)i).ToArray(),
                Enumerable.Range(0, links).Select(i => runs.Average(r => r.DeltaEffectiveRanks![i])).ToArray());
            line.LegendText = cell.Method;
            line.MarkerSize = 6;
            any = true;
        }
        if (!any) return null;
        plot.Title("Effective rank of the accumulated delta W per link (mean over layers, seeds)");
        plot.XLabel("link");
        plot.YLabel("effective rank");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png));
        return path;
    }

    /// <summary>The final delta W's singular values (log10, mean over layers), from the first seed's log, per LoRA or COLA row.</summary>
    static string? FinalSpectra(IReadOnlyList<CellSummary> cells, string path)
    {
        var plot = new Plot();
        var any = false;
        foreach (var cell in cells.Where(c => c.Example.Kind.HasChain()))
        {
            var log = Path.Combine(cell.Runs[0].Directory, "train_log.jsonl");
            if (!File.Exists(log)) continue;
            var final = File.ReadLines(log).Select(l => JsonNode.Parse(l)).LastOrDefault(n => n?["event"]?.GetValue<string>() == "spectrum");
            if (final?["delta"]?["layers"] is not JsonArray layers || layers.Count == 0) continue;
            var spectra = layers.Select(l => l!["singular_values"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray()).ToList();
            var length = spectra.Min(v => v.Length);
            var mean = Enumerable.Range(0, length).Select(i => Math.Log10(Math.Max(1e-12, spectra.Average(v => v[i])))).ToArray();
            var line = plot.Add.ScatterLine(Enumerable.Range(1, length).Select(i => (double)i).ToArray(), mean);
            line.LegendText = cell.Method;
            any = true;
        }
        if (!any) return null;
        plot.Title("Singular values of the final accumulated delta W (first seed, mean over layers)");
        plot.XLabel("index");
        plot.YLabel("log10 singular value");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png));
        return path;
    }

    /// <summary>Step losses of the first seed at the selected learning rate, per trained method; knots as dashed lines.</summary>
    static string? LossCurves(IReadOnlyList<CellSummary> cells, string path)
    {
        var plot = new Plot();
        var any = false;
        foreach (var cell in cells.Where(c => c.Example.Kind.Trains()))
        {
            var log = Path.Combine(cell.Runs[0].Directory, "train_log.jsonl");
            if (!File.Exists(log)) continue;
            var steps = new List<double>();
            var losses = new List<double>();
            var knots = new List<double>();
            foreach (var line in File.ReadLines(log))
            {
                var node = JsonNode.Parse(line);
                if (node?["event"]?.GetValue<string>() == "knot") knots.Add(node["step"]!.GetValue<double>());
                else if (node?["loss"] is { } loss) { steps.Add(node["step"]!.GetValue<double>()); losses.Add(loss.GetValue<double>()); }
            }
            if (steps.Count == 0) continue;
            var line2 = plot.Add.ScatterLine(steps.ToArray(), Smooth(losses, 5));
            line2.LegendText = cell.Method;
            foreach (var k in knots)
            {
                var v = plot.Add.VerticalLine(k);
                v.Color = line2.Color.WithAlpha(0.5);
                v.LinePattern = LinePattern.Dashed;
            }
            any = true;
        }
        if (!any) return null;
        plot.Title($"{cells[0].Task}: training loss (knots dashed)");
        plot.XLabel("optimizer step");
        plot.YLabel("loss (moving average of 5)");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png));
        return path;
    }

    static double[] Smooth(IReadOnlyList<double> xs, int window) => xs
        .Select((_, i) => xs.Skip(Math.Max(0, i - window + 1)).Take(Math.Min(window, i + 1)).Average()).ToArray();

    static string? ByChainLength(Study study, string path)
    {
        var points = Reports.ChainLengthCells(study);
        if (points.Select(p => p.Length).Distinct().Count() < 2) return null;
        var plot = new Plot();
        foreach (var task in points.Select(p => p.Cell.Task).Distinct())
        {
            var series = points.Where(p => p.Cell.Task == task).OrderBy(p => p.Length).ToList();
            AddBand(plot, task, series.Select(p => (double)p.Length).ToArray(), series.Select(p => p.Cell).ToList());
        }
        plot.Title("Test score against chain length (mean ± std over seeds)");
        plot.XLabel("chain length");
        plot.YLabel("test score");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png));
        return path;
    }

    static string? BySecondRank(Study study, string path)
    {
        var points = study.Cells.Where(c => c.Example.Kind == MethodKind.Cola && c.Example.Options.Chain.Ranks is { Count: 2 } && study.IsStandard(c))
            .Select(c => (Rank: c.Example.Options.Chain.Ranks![1], Cell: c)).ToList();
        if (points.Select(p => p.Rank).Distinct().Count() < 2) return null;
        var plot = new Plot();
        foreach (var task in points.Select(p => p.Cell.Task).Distinct())
        {
            var series = points.Where(p => p.Cell.Task == task).OrderBy(p => p.Rank).ToList();
            AddBand(plot, task, series.Select(p => (double)p.Rank).ToArray(), series.Select(p => p.Cell).ToList());
        }
        plot.Title("Test score against the second link's rank (mean ± std over seeds)");
        plot.XLabel("rank of link 2");
        plot.YLabel("test score");
        plot.ShowLegend();
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(800, 500, ScottPlot.ImageFormat.Png));
        return path;
    }

    static void AddBand(Plot plot, string label, double[] xs, IReadOnlyList<CellSummary> cells)
    {
        var scale = cells[0].Metric == "-nll" ? -1.0 : 100.0;
        var mean = cells.Select(c => scale * c.Mean).ToArray();
        var std = cells.Select(c => Math.Abs(scale) * c.Std).ToArray();
        var band = plot.Add.FillY(xs, mean.Zip(std, (m, s) => m - s).ToArray(), mean.Zip(std, (m, s) => m + s).ToArray());
        var line = plot.Add.ScatterLine(xs, mean);
        line.LegendText = label;
        line.MarkerSize = 6;
        band.FillColor = line.Color.WithAlpha(0.2);
        band.LineWidth = 0;
    }
}
