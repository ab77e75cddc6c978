using System.Text.RegularExpressions;
using ChainLora.Experiments;
using SkiaSharp;

namespace ChainLora.Tests.Experiments;

/// <summary>`report`'s index.html, opened in a real browser (Debian's headless Chromium): it renders its tables and figures.</summary>
public sealed partial class ReportPageTests : TempFolderTest
{
    static string? Chromium() =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    // --no-sandbox: the suite may run as root, where Chromium's sandbox refuses to start.
    (int Exit, string Out, string Err) Browse(string chromium, params IEnumerable<string> args) =>
        ChildProcess.Run(chromium, new[] { "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", $"--user-data-dir={PathIn("profile")}" }.Concat(args),
            timeout: TimeSpan.FromMinutes(2));

    [GeneratedRegex("""(?:src|href)\s*=\s*"(?!data:)[^"]*""")]
    private static partial Regex ExternalReference();

    [Fact]
    public void The_report_page_renders_its_tables_and_figures_in_a_real_browser()
    {
        var chromium = Chromium();
        if (chromium is null) Assert.Skip("no Chromium here (apt-get install chromium; .ci/run installs it)");
        var grid = GridAndReportTests.FakeRun(j => (0.6 + 0.01 * j.Seed, 0.7 + 0.01 * j.Seed + (j.Kind == MethodKind.Cola ? 0.05 : 0)));
        try
        {
            var cells = ResultTable.Summarize(ResultTable.Load(grid));
            var files = Reports.Write(cells, PathIn("report"));
            var page = PathIn(Path.Combine("report", "index.html"));
            Assert.Equal(page, files[1]);
            var html = File.ReadAllText(page);
            Assert.DoesNotMatch(ExternalReference(), html);   // one file: nothing fetched, the figures inlined
            var pngs = files.Count(f => f.EndsWith(".png", StringComparison.Ordinal));
            Assert.True(pngs >= 2, $"{pngs} figures");

            var (exit, dom, error) = Browse(chromium, "--dump-dom", new Uri(page).AbsoluteUri);
            Assert.True(exit == 0, error);
            Assert.Contains("Table 1", dom);
            Assert.Contains("<th>method</th>", dom);
            Assert.Contains("71.0 ± 1.0", dom);
            Assert.Equal(pngs, Regex.Count(dom, "<img "));

            var shot = PathIn("page.png");
            (exit, _, error) = Browse(chromium, $"--screenshot={shot}", "--window-size=1280,6000", new Uri(page).AbsoluteUri);
            Assert.True(exit == 0 && File.Exists(shot), error);
            using var bitmap = SKBitmap.Decode(shot);
            var pixels = bitmap.Pixels;
            var colours = pixels.Select(p => (uint)p).Distinct().Count();
            Assert.True(colours > 50, $"a blank screenshot: {colours} colours");
            // The table headers' background (#eeeeff) is on screen, and so are the figures: the most
            // common saturated colour of each PNG (a plotted line) appears in the screenshot.
            var header = pixels.Count(p => p.Red == 0xee && p.Green == 0xee && p.Blue == 0xff);
            Assert.True(header > 1000, $"{header} pixels of table header");
            var onScreen = pixels.Select(p => (uint)p).ToHashSet();
            foreach (var png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
            {
                using var figure = SKBitmap.Decode(png);
                var line = figure.Pixels.Where(p => Math.Max(p.Red, Math.Max(p.Green, p.Blue)) - Math.Min(p.Red, Math.Min(p.Green, p.Blue)) > 80)
                    .GroupBy(p => (uint)p).MaxBy(g => g.Count())!.Key;
                Assert.True(onScreen.Contains(line), $"{Path.GetFileName(png)}: its colour #{line:x8} is not on screen");
            }
        }
        finally
        {
            Directory.Delete(grid, recursive: true);
        }
    }
}
