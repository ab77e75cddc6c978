// Knots placed where a link has stopped learning (the paper's future work, Sec. 7): the mean
// training loss over the last window of steps is compared with the window before it, and a knot is
// tied once the relative improvement falls under a threshold.
namespace ChainLora.Chain;

/// <summary>Knots fixed in advance, or placed while training (<see cref="AutoKnots"/>).</summary>
public enum KnotPlacement { Fixed, Auto }

public sealed record AutoKnots
{
    /// <summary>Steps per window; 0 is 5% of the budget (at least 5 steps).</summary>
    public int Window { get; init; }
    /// <summary>A knot when (mean of the window before - mean of the last window) / mean of the window before falls under this.</summary>
    public double Threshold { get; init; } = 0.01;

    public AutoKnots Validate()
    {
        if (Window < 0) throw new ArgumentException($"automatic knots: window {Window} must be >= 0 (0 = 5% of the budget)");
        if (!(Threshold >= 0 && Threshold < 1)) throw new ArgumentException($"automatic knots: threshold {Threshold} must be in [0, 1)");
        return this;
    }

    public int WindowFor(int totalSteps) => Window > 0 ? Window : Math.Max(5, totalSteps / 20);

    /// <summary>
    /// Why a knot should follow step <paramref name="step"/> (1-based count of steps taken) of
    /// <paramref name="link"/>, or null to keep training it. Both windows lie inside the link, a new
    /// link must have at least a window of budget left, and the chain must have room.
    /// </summary>
    public string? Decide(IReadOnlyList<double> stepLosses, Link link, int step, ChainSchedule schedule)
    {
        var window = WindowFor(schedule.TotalSteps);
        if (schedule.Links.Count >= schedule.MaxLinks || step - link.StartStep < 2 * window || schedule.TotalSteps - step < window)
            return null;
        var last = Mean(stepLosses, step - window, window);
        var before = Mean(stepLosses, step - 2 * window, window);
        var improvement = (before - last) / Math.Abs(before);
        return improvement < Threshold
            ? $"auto: mean loss over steps {step - window + 1}-{step} improved {improvement:P2} on the {window} steps before (threshold {Threshold:P1})"
            : null;
    }

    static double Mean(IReadOnlyList<double> xs, int start, int count)
    {
        double sum = 0;
        for (var i = start; i < start + count; i++) sum += xs[i];
        return sum / count;
    }
}
