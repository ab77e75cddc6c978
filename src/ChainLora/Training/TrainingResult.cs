// What a run reports: per optimizer step (StepReport, for progress bars), per link, and as a whole.
namespace ChainLora.Training;

/// <summary>What one optimizer step reports.</summary>
public sealed record StepReport(int Step, int TotalSteps, int Link, int Links, double Loss, double LearningRate, TimeSpan Elapsed);

/// <summary>One link's training; <paramref name="Reason"/> says why the knot before it sits where it does (null for the first).</summary>
public sealed record LinkResult(int Index, int Rank, double Alpha, int StartStep, int EndStep, IReadOnlyList<double> Losses, string? Reason = null)
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
