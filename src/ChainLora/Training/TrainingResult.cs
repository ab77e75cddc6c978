// What a run reports: per optimizer step (StepReport, for progress bars), per link, and as a whole.
namespace ChainLora.Training;

/// <summary>What one optimizer step reports.</summary>
public sealed record StepReport(int Step, int TotalSteps, int Link, int Links, double Loss, double LearningRate, TimeSpan Elapsed);

/// <summary>
/// One link's training; <paramref name="Reason"/> says why the knot before it sits where it does (null for the first);
/// <paramref name="DeltaEffectiveRank"/> is the accumulated delta W's effective rank when the link ended (mean over layers).
/// </summary>
public sealed record LinkResult(int Index, int Rank, double Alpha, int StartStep, int EndStep, IReadOnlyList<double> Losses, string? Reason = null,
    double? DeltaEffectiveRank = null)
{
    public double MeanLoss => Losses.Count == 0 ? double.NaN : Losses.Average();
}

/// <summary>The outcome of a run; <c>Flops</c> are analytic training FLOPs per link (see <see cref="Training.Flops"/>).</summary>
public sealed record TrainingResult(IReadOnlyList<LinkResult> Links, IReadOnlyList<double> StepLosses, long TrainableParameters,
    long Tokens, TimeSpan Elapsed, TimeSpan KnotTime, IReadOnlyList<double> LinkFlops)
{
    public double TotalFlops => LinkFlops.Sum();

    public double FinalLoss => StepLosses.Count == 0 ? double.NaN : StepLosses[^1];
}

/// <summary>
/// Training stopped at the first non-finite loss or gradient, or at a knot that refused its delta,
/// before the optimizer applied it: the weights and the last checkpoint are those of the step before.
/// </summary>
public sealed class TrainingDivergedException(int step, int link, string reason, TrainingResult partial)
    : Exception($"loss diverged at step {step} (link {link}): {reason}")
{
    /// <summary>The optimizer step (1-based) that diverged.</summary>
    public int Step { get; } = step;
    /// <summary>The link (1-based) it belonged to.</summary>
    public int Link { get; } = link;
    public string Reason { get; } = reason;
    /// <summary>The run up to the last good step.</summary>
    public TrainingResult Partial { get; } = partial;
}

/// <summary>A run stopped on request after <paramref name="step"/> steps, its checkpoint saved when it has a folder.</summary>
public sealed class TrainingStoppedException(int step, string? checkpoint)
    : OperationCanceledException(checkpoint is null
        ? $"stopped after step {step} (no checkpoint folder, so nothing to resume)"
        : $"stopped after step {step}; checkpoint saved in {checkpoint}")
{
    public int Step { get; } = step;
    public string? Checkpoint { get; } = checkpoint;
}
