using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.IO;

namespace ChainLora.Training;

/// <summary>
/// The per-run metrics log: a JSONL file with one line per optimizer step {step, link, loss, lr,
/// tokens_per_s, grad_norm}, one per knot {event: "knot", step, link, rank, reason, delta} and one at
/// the end of a chain {event: "spectrum", step, link, delta}, delta being the accumulated update's
/// spectrum {effective_rank (mean over layers), layers: [{layer, effective_rank, singular_values}]}, and the same
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

    public void Knot(int step, int link, int rank, string? reason, IReadOnlyList<Lora.LayerSpectrum>? delta = null)
    {
        writer?.WriteLine(JsonLines.Serialize(new { @event = "knot", step, link, rank, reason, delta = Delta(delta) }));
        events?.Knot(step, link);
    }

    /// <summary>The accumulated delta W's spectrum when the chain's last link ends.</summary>
    public void Spectrum(int step, int link, IReadOnlyList<Lora.LayerSpectrum> delta) =>
        writer?.WriteLine(JsonLines.Serialize(new { @event = "spectrum", step, link, delta = Delta(delta) }));

    static object? Delta(IReadOnlyList<Lora.LayerSpectrum>? delta) => delta is null ? null : new
    {
        effective_rank = delta.Average(l => l.EffectiveRank),
        layers = delta.Select(l => new { layer = l.Layer, effective_rank = l.EffectiveRank, singular_values = l.SingularValues }),
    };

    public void Flush() => writer?.Flush();

    public void Dispose() => writer?.Dispose();
}
