// Training batches of a task sample: classification tasks as ChoiceBatch; COPA, ReCoRD, SQuAD and
// DROP as teacher-forced LM loss on the answer tokens only (the correct candidate's continuation for
// COPA and ReCoRD); lm windows as LM loss on every token after BOS. Examples are tokenized once;
// each epoch visits them in a seeded order, and tensors are made per batch, inside the enumerator.
using ChainLora.Evaluation;
using ChainLora.Tasks;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Objectives;

public sealed class TaskTrainingData<T>(IReadOnlyList<T> items, int batchSize, long seed, Func<IReadOnlyList<T>, TrainingBatch> toBatch)
    : ITrainingData
{
    public int BatchesPerEpoch => (items.Count + batchSize - 1) / batchSize;

    public IEnumerable<TrainingBatch> Epoch(int epoch)
    {
        var order = Sampling.Permutation(items.Count, Prng.Derive(seed, 2, epoch));
        for (var start = 0; start < order.Length; start += batchSize)
            yield return toBatch(order.Skip(start).Take(batchSize).Select(i => items[i]).ToList());
    }
}

public static class TaskTrainingData
{
    /// <summary>The training objective of <paramref name="task"/> over its train sample.</summary>
    /// <summary>The training objective of <paramref name="task"/> over its train sample.</summary>
    public static ITrainingData TrainingData(this PreparedTask task, PromptEncoder encoder, int batchSize, long seed, Device device)
    {
        CheckTrainSample(task);
        if (task.Sft is { } sft) return Sft(sft.Train, batchSize, seed, device, encoder.Tokenizer.PadId);
        return task.Windows is { } w
            ? Windows(w.Train, batchSize, seed, device, encoder.Tokenizer.PadId)
            : For(task.Task.Kind, task.Examples!.Train, encoder, batchSize, seed, device);
    }

    /// <summary>
    /// The sft objective of <paramref name="task"/>'s train sample packed into rows of
    /// <paramref name="capacity"/> positions (<see cref="SftPacking"/>), and how it packed.
    /// </summary>
    public static (ITrainingData Data, PackingSummary Packing) PackedTrainingData(this PreparedTask task, int capacity, int batchSize, long seed,
        Device device, int padId)
    {
        CheckTrainSample(task);
        if (task.Sft is not { } sft) throw new ArgumentException($"pack: only the sft task packs its examples; {task.Task.Name} does not");
        var rows = SftPacking.Pack(sft.Train, capacity);
        return (Packed(rows, batchSize, seed, device, padId), SftPacking.Summarize(rows, capacity));
    }

    static void CheckTrainSample(PreparedTask task)
    {
        if (task.Data.Train == 0)
            throw new ArgumentException($"{task.Task.Name}: the train sample is empty (num_train {task.Data.Requested.Train}, train pool {task.Data.TrainPool})" +
                (task.Data.Truncation is { Dropped: > 0 } t
                    ? $"; {t.Dropped} drawn examples were dropped: too long for --context {t.MaxTokens}, or left with no response token within it"
                    : ""));
    }

    /// <summary>The training objective of <paramref name="kind"/> over <paramref name="examples"/>.</summary>
    public static ITrainingData For(TaskKind kind, IReadOnlyList<TaskExample> examples, PromptEncoder encoder, int batchSize, long seed, Device device)
    {
        if (batchSize < 1) throw new ArgumentException($"batch size {batchSize}: must be at least 1");
        var pad = encoder.Tokenizer.PadId;
        return kind switch
        {
            TaskKind.Classification => new TaskTrainingData<EncodedChoice>(
                examples.Select(e => encoder.Choice((ChoiceExample)e)).ToList(), batchSize, seed,
                batch => ChoiceBatch.Create(batch, device, pad)),
            TaskKind.MultipleChoice or TaskKind.Generation => new TaskTrainingData<PromptAndContinuation>(
                examples.Select(encoder.Target).ToList(), batchSize, seed, batch => LmBatchOf(batch, device, pad)),
            _ => throw new ArgumentException($"{kind} tasks train on text windows: use {nameof(Windows)}"),
        };
    }

    /// <summary>Language modelling on windows that start with BOS.</summary>
    public static ITrainingData Windows(IReadOnlyList<int[]> windows, int batchSize, long seed, Device device, int padId) =>
        new TaskTrainingData<PromptAndContinuation>(
            windows.Where(w => w.Length > 1).Select(w => new PromptAndContinuation(w[..1], w[1..])).ToList(), batchSize, seed,
            batch => LmBatchOf(batch, device, padId));

    /// <summary>sft: LM loss on the tokens each example's loss mask marks (<see cref="ResponseLoss.Pack"/>).</summary>
    public static ITrainingData Sft(IReadOnlyList<SftEncoded> examples, int batchSize, long seed, Device device, int padId)
    {
        if (batchSize < 1) throw new ArgumentException($"batch size {batchSize}: must be at least 1");
        return new TaskTrainingData<SftEncoded>(examples, batchSize, seed, batch =>
        {
            var (input, targets) = ResponseLoss.Tensors(batch, device, padId);
            return new LmBatch(input, targets);
        });
    }

    /// <summary>sft with packing: batches of packed rows, attention and positions kept inside each example.</summary>
    public static ITrainingData Packed(IReadOnlyList<PackedRow> rows, int batchSize, long seed, Device device, int padId)
    {
        if (batchSize < 1) throw new ArgumentException($"batch size {batchSize}: must be at least 1");
        return new TaskTrainingData<PackedRow>(rows, batchSize, seed, batch =>
        {
            var (input, targets, examples) = SftPacking.Tensors(batch, device, padId);
            return new LmBatch(input, targets, examples);
        });
    }

    static LmBatch LmBatchOf(IReadOnlyList<PromptAndContinuation> rows, Device device, int padId)
    {
        var (input, targets) = ContinuationScoring.Pack(rows, device, padId);
        return new LmBatch(input, targets);
    }
}
