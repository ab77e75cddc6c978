using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.IO;

namespace ChainLora.Training;

/// <summary>
/// The per-run JSONL metrics log: one line per optimizer step {step, link, loss, lr, tokens_per_s}
/// and one per knot {event: "knot", step, link, rank, reason}. On resume, lines past the checkpoint's step
/// (written before the interruption) are dropped so the log reads as one uninterrupted run.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    readonly StreamWriter writer;

    TrainingLog(StreamWriter writer) => this.writer = writer;

    public static TrainingLog? Open(string? path, int resumedAtStep)
    {
        if (path is null) return null;
        if (resumedAtStep == 0 || !File.Exists(path)) return new TrainingLog(new StreamWriter(path, append: false) { AutoFlush = true });
        var kept = File.ReadLines(path).Where(line =>
        {
            try { return (JsonNode.Parse(line)?["step"]?.GetValue<int>() ?? int.MaxValue) <= resumedAtStep; }
            catch (JsonException) { return false; } // a line cut by the interruption
        }).ToList();
        AtomicFile.WriteAllLines(path, kept);
        return new TrainingLog(new StreamWriter(path, append: true) { AutoFlush = true });
    }

    public void Step(int step, int link, double loss, double lr, double tokensPerSecond) =>
        writer.WriteLine(JsonLines.Serialize(new { step, link, loss, lr, tokens_per_s = tokensPerSecond }));

    public void Knot(int step, int link, int rank, string? reason) =>
        writer.WriteLine(JsonLines.Serialize(new { @event = "knot", step, link, rank, reason }));

    public void Flush() => writer.Flush();

    public void Dispose() => writer.Dispose();
}
