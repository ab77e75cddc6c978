using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.IO;

namespace ChainLora.Training;

/// <summary>
/// The per-run metrics log: a JSONL file with one line per optimizer step {step, link, loss, lr,
/// tokens_per_s, grad_norm} and one per knot {event: "knot", step, link, rank, reason}, and the same
/// as TensorBoard events when a folder is given. On resume, JSONL lines past the checkpoint's step
/// (written before the interruption) are dropped so the log reads as one uninterrupted run.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    readonly StreamWriter? writer;
    readonly TensorBoardEvents? events;

    TrainingLog(StreamWriter? writer, TensorBoardEvents? events) => (this.writer, this.events) = (writer, events);

    public static TrainingLog? Open(string? path, int resumedAtStep, string? tensorBoardDir = null)
    {
        var events = tensorBoardDir is null ? null : new TensorBoardEvents(tensorBoardDir);
        if (path is null) return events is null ? null : new TrainingLog(null, events);
        if (resumedAtStep == 0 || !File.Exists(path)) return new TrainingLog(new StreamWriter(path, append: false) { AutoFlush = true }, events);
        var kept = File.ReadLines(path).Where(line =>
        {
            try { return (JsonNode.Parse(line)?["step"]?.GetValue<int>() ?? int.MaxValue) <= resumedAtStep; }
            catch (JsonException) { return false; } // a line cut by the interruption
        }).ToList();
        AtomicFile.WriteAllLines(path, kept);
        return new TrainingLog(new StreamWriter(path, append: true) { AutoFlush = true }, events);
    }

    public void Step(int step, int link, double loss, double lr, double tokensPerSecond, double gradNorm)
    {
        writer?.WriteLine(JsonLines.Serialize(new { step, link, loss, lr, tokens_per_s = tokensPerSecond, grad_norm = gradNorm }));
        events?.Step(step, loss, lr, tokensPerSecond, gradNorm);
    }

    public void Knot(int step, int link, int rank, string? reason)
    {
        writer?.WriteLine(JsonLines.Serialize(new { @event = "knot", step, link, rank, reason }));
        events?.Knot(step, link);
    }

    public void Flush() => writer?.Flush();

    public void Dispose() => writer?.Dispose();
}
