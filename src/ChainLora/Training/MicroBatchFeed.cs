namespace ChainLora.Training;

/// <summary>
/// The micro-batches of a run in order, where the run stands (<see cref="RunState.Epoch"/>,
/// <see cref="RunState.BatchInEpoch"/>), handed out a whole optimizer step at a time: an epoch
/// gives <c>floor(batches / accumulation)</c> steps, and the micro-batches left over at its end are
/// skipped, like a drop_last loader, so the schedule's step count is exactly what the data yields.
/// </summary>
public sealed class MicroBatchFeed : IDisposable
{
    readonly ITrainingData data;
    readonly int accumulation;
    readonly int epochs;
    readonly RunState run;
    IEnumerator<TrainingBatch>? batches;

    public MicroBatchFeed(ITrainingData data, int accumulation, int epochs, RunState run)
    {
        if (accumulation < 1) throw new ArgumentException($"gradient accumulation {accumulation}: must be at least 1");
        if (run.BatchInEpoch > data.BatchesPerEpoch || run.Epoch > epochs)
            throw new InvalidDataException(
                $"checkpoint at epoch {run.Epoch}, micro-batch {run.BatchInEpoch}: the run has {epochs} epochs of {data.BatchesPerEpoch} micro-batches");
        this.data = data;
        this.accumulation = accumulation;
        this.epochs = epochs;
        this.run = run;
    }

    /// <summary>Optimizer steps one epoch of <paramref name="data"/> gives at <paramref name="accumulation"/> micro-batches per step.</summary>
    public static int StepsPerEpoch(ITrainingData data, int accumulation) => data.BatchesPerEpoch / accumulation;

    /// <summary>
    /// Positions the feed on the next optimizer step, moving to the next epoch when this one has no
    /// whole step left; false when the epochs are used up. Then take the step's micro-batches with <see cref="Next"/>.
    /// </summary>
    public bool StartStep()
    {
        while (run.Epoch < epochs)
        {
            if (run.BatchInEpoch + accumulation <= data.BatchesPerEpoch)
            {
                batches ??= data.Epoch(run.Epoch).Skip(run.BatchInEpoch).GetEnumerator();
                return true;
            }
            batches?.Dispose();
            batches = null;
            run.Epoch++;
            run.BatchInEpoch = 0;
        }
        return false;
    }

    /// <summary>The next micro-batch of the step (its tensors are created now, in the caller's dispose scope).</summary>
    public TrainingBatch Next()
    {
        if (batches is null || !batches.MoveNext())
            throw new InvalidOperationException(
                $"epoch {run.Epoch} ended after {run.BatchInEpoch} micro-batches; the data promised {data.BatchesPerEpoch}");
        run.BatchInEpoch++;
        return batches.Current;
    }

    public void Dispose() => batches?.Dispose();
}
