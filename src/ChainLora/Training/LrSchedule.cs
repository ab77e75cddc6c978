using ChainLora.Chain;

namespace ChainLora.Training;

/// <summary>
/// Linear warmup then linear decay to zero. By default over the whole budget, so COLA's knots
/// do not disturb the schedule; with <c>rewarmEachLink</c> each link warms up and decays on its
/// own. With <c>restartWarmup</c> > 0 (ReLoRA's jagged schedule) the budget-wide rate is scaled, after
/// each knot, by (steps into the link + 1) / ceil(restartWarmup * link steps) until that reaches 1.
/// The decay is transformers' get_linear_schedule_with_warmup's (pinned, without warmup, by
/// TorchReferenceTrainingTests); during warmup step t runs at peak (t + 1) / w where transformers
/// gives peak t / w, so no step is spent at rate 0.
/// </summary>
public sealed class LrSchedule(double peak, double warmupRatio, bool rewarmEachLink, ChainSchedule chain, double restartWarmup = 0)
{
    public double At(int step)
    {
        var rate = Base(step);
        var link = chain.LinkAt(step);
        if (restartWarmup <= 0 || link.Index == 0) return rate;
        var ramp = (int)Math.Max(1, Math.Ceiling(restartWarmup * link.Steps));
        return rate * Math.Min(1.0, (double)(step - link.StartStep + 1) / ramp);
    }

    double Base(int step)
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
