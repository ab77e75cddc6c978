// `--model org/name[@rev]`: the Hub model's cache folder, downloading what is missing with a
// progress bar per file on stderr (stdout stays clean for tables and --json lines).
using ChainLora.IO.Hub;
using Spectre.Console;

namespace ChainLora.Cli;

public static class DownloadProgress
{
    /// <summary>
    /// The directory a --model value names: an existing directory, or anything that is not a repo id,
    /// as is (the loader says what is wrong with it); a repo id resolved through the Hugging Face
    /// cache. Bars when stderr is a terminal; otherwise one line per downloaded file on <paramref name="log"/>
    /// (default stderr). <paramref name="cancel"/> stops a download.
    /// </summary>
    public static string ResolveModel(string spec, HubOptions? options = null, TextWriter? log = null, CancellationToken cancel = default)
    {
        if (Directory.Exists(spec) || !HubModelResolver.LooksLikeRepoId(spec)) return spec;
        options ??= HubOptions.FromEnvironment();
        // Cached (or offline, where Resolve only looks): no bars to draw.
        if (options.Offline || HubModelResolver.FindCached(spec, options) is not null) return HubModelResolver.Resolve(spec, options, cancel: cancel);
        if (log is not null || Console.IsErrorRedirected)
            return HubModelResolver.Resolve(spec, options, new FinishedFileLines(log ?? Console.Error), cancel);
        var snapshot = "";
        TrainingProgress.ErrorConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx => snapshot = HubModelResolver.Resolve(spec, options, new BarPerFile(ctx), cancel));
        return snapshot;
    }

    /// <summary>Called on the downloading thread, in order (Progress&lt;T&gt; would post to the thread pool and reorder).</summary>
    sealed class BarPerFile(ProgressContext context) : IProgress<HubFileProgress>
    {
        readonly Dictionary<string, ProgressTask> bars = [];

        public void Report(HubFileProgress p)
        {
            if (!bars.TryGetValue(p.File, out var bar))
                bars[p.File] = bar = context.AddTask(Markup.Escape(p.File), maxValue: Math.Max(1, p.TotalBytes));
            bar.IsIndeterminate = p.TotalBytes < 0;
            bar.Value = p.BytesDone;
        }
    }

    sealed class FinishedFileLines(TextWriter log) : IProgress<HubFileProgress>
    {
        public void Report(HubFileProgress p)
        {
            if (p.BytesDone == p.TotalBytes) log.WriteLine($"downloaded {p.File} ({p.BytesDone:N0} bytes)");
        }
    }
}
