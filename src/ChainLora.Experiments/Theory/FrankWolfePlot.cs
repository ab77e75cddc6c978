// The Frank-Wolfe gap g_t, its running average and Theorem 4.1's bound against t, on a log scale.
using ScottPlot;

namespace ChainLora.Theory;

public static class FrankWolfePlot
{
    public static void Save(FrankWolfeResult result, string path)
    {
        var plot = new Plot();
        double[] t = [.. result.Steps.Select(s => (double)s.T)];
        // log10 with a floor: a gap of exactly 0 (a stationary point) would have no logarithm.
        static double[] Log(IEnumerable<double> xs) => [.. xs.Select(x => Math.Log10(Math.Max(x, 1e-12)))];
        var gap = plot.Add.ScatterLine(t, Log(result.Steps.Select(s => s.Gap)));
        gap.LegendText = "gap g_t";
        var average = plot.Add.ScatterLine(t, Log(result.Steps.Select(s => s.AverageGap)));
        average.LegendText = "average gap";
        average.LineWidth = 2;
        var bound = plot.Add.HorizontalLine(Math.Log10(result.Bound));
        bound.LegendText = "Theorem 4.1 bound";
        bound.LinePattern = LinePattern.Dashed;
        plot.Title($"Algorithm 2 on {result.Problem.ToString().ToLowerInvariant()} (T = {result.Iterations}, eta = {result.Eta:G3})");
        plot.XLabel("iteration t");
        plot.YLabel("log10");
        plot.ShowLegend();
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        // Rendered beside the target, then renamed: a reader never sees half a PNG.
        IO.AtomicFile.WriteAllBytes(path, plot.GetImageBytes(900, 500, ImageFormat.Png));
    }
}
