using ChainLora.Chain;

namespace ChainLora.Training;

/// <summary>
/// Linear warmup then linear decay to zero. By default over the whole budget, so COLA's knots
/// do not disturb the schedule; with <c>rewarmEachLink</c> each link warms up and decays on its
/// own (ReLoRA style).
/// </summary>
public sealed class LrSchedule(double peak, double warmupRatio, bool rewarmEachLink, ChainSchedule chain)
{
    public double At(int step)
    {
        var (start, length) = rewarmEachLink
            ? (chain.LinkAt(step).StartStep, chain.LinkAt(step).Steps)
            : (0, chain.TotalSteps);
        var t = step - start;
        var warmup = (int)Math.Ceiling(warmupRatio * length);
        if (t < warmup) return peak * (t + 1) / warmup;
        return peak * Math.Max(0.0, (double)(length - t) / Math.Max(1, length - warmup));
    }
}
