using System.Diagnostics;
using ChainLora.Chain;
using ChainLora.Lora;

namespace ChainLora.Training;

/// <summary>One call of <see cref="ChainTrainer.Train"/>: the run's state and the collaborators that keep its books.</summary>
sealed class RunInProgress(RunState state, long trainableCount, TrainingLog? log, MicroBatchFeed feed, FlopMeter flops) : IDisposable
{
    readonly Stopwatch clock = Stopwatch.StartNew();
    readonly TimeSpan before = TimeSpan.FromSeconds(state.ElapsedSeconds);
    readonly Stopwatch stepClock = Stopwatch.StartNew();
    long stepTokens;

    public RunState State => state;
    public TrainingLog? Log => log;
    public MicroBatchFeed Feed => feed;
    public TimeSpan Elapsed => before + clock.Elapsed;
    /// <summary>A stop was asked for after the last step; the run ends once a knot that is due is tied.</summary>
    public bool StopRequested { get; set; }
    /// <summary>The step of the last checkpoint this call saved, or -1.</summary>
    public int CheckpointedStep { get; set; } = -1;

    public void AddFlops(int link, double amount) => flops.AddOnce(link, amount);

    public void CountTokens(int link, TrainingBatch batch)
    {
        state.Tokens += batch.Tokens;
        stepTokens += batch.Tokens;
        flops.Add(link, batch);
    }

    /// <summary>Tokens per second since the previous call (one optimizer step, knots and checkpoints aside).</summary>
    public double StepTokensPerSecond()
    {
        var rate = stepTokens / Math.Max(1e-9, stepClock.Elapsed.TotalSeconds);
        stepTokens = 0;
        stepClock.Restart();
        return rate;
    }

    /// <summary>A knot's books: the time it <paramref name="took"/>, and a knot event in the log naming the link it began.</summary>
    public void LogKnot(Link next, TimeSpan took, IReadOnlyList<LayerSpectrum>? spectrum)
    {
        state.KnotSeconds += took.TotalSeconds;
        log?.Knot(state.Step, next.Index + 1, next.Rank, next.Reason, spectrum);
    }

    public TrainingResult Result(ChainSchedule schedule)
    {
        var links = schedule.Links.Select(l => new LinkResult(l.Index, l.Rank, l.Alpha, l.StartStep, l.EndStep,
            state.StepLosses.Skip(l.StartStep).Take(l.Steps).ToList(), l.Reason,
            l.Index < state.DeltaEffectiveRanks.Count ? state.DeltaEffectiveRanks[l.Index] : null)).ToList();
        return new TrainingResult(links, state.StepLosses, trainableCount, state.Tokens, Elapsed,
            TimeSpan.FromSeconds(state.KnotSeconds), state.LinkFlops.Take(links.Count).ToList());
    }

    public void Dispose()
    {
        feed.Dispose();
        log?.Dispose();
    }
}
