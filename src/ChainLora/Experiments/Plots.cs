// PNG plots with ScottPlot: training loss with knot markers, test score against chain length with
// a std band (the paper's Figure 2), and test score against the second link's rank (Figure 3).
using System.Text.Json.Nodes;
using ChainLora.IO;
using ChainLora.Training;
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
        }
        return files;
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
        var points = study.Cells.Where(c => c.Example.Kind == MethodKind.Cola && c.Example.Ranks is { Count: 2 } && study.IsStandard(c))
            .Select(c => (Rank: c.Example.Ranks![1], Cell: c)).ToList();
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
