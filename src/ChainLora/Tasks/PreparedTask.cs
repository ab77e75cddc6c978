// A task's data for one seed: read the folder (or text), draw train / dev / test, and hand out
// the samples to TaskTrainingData (Objectives) and TaskEvaluator (Evaluation).
using ChainLora.Tokenization;

namespace ChainLora.Tasks;

/// <summary>
/// Where the examples came from and how many were used (see <see cref="Sampling"/>). lm only: <paramref name="Split"/>
/// (how dev was drawn) and, for a contiguous split, <paramref name="DevPool"/> windows in the dev region.
/// </summary>
public sealed record DataSummary(string Path, IReadOnlyList<string> TrainFiles, IReadOnlyList<string> ValidationFiles,
    int TrainPool, int ValidationPool, bool Carved, SampleSizes Requested, int Train, int Dev, int Test, string? Note,
    TextSplit? Split = null, int? DevPool = null);

public sealed class PreparedTask
{
    public TaskDefinition Task { get; }
    public DataSummary Data { get; }
    /// <summary>Rendered examples (every task but lm).</summary>
    public TaskSample<TaskExample>? Examples { get; }
    /// <summary>Token windows, each starting with BOS (the lm task).</summary>
    public TaskSample<int[]>? Windows { get; }

    PreparedTask(TaskDefinition task, DataSummary data, TaskSample<TaskExample>? examples, TaskSample<int[]>? windows) =>
        (Task, Data, Examples, Windows) = (task, data, examples, windows);

    /// <summary>
    /// Reads <paramref name="path"/> (a task folder; for lm a text file or a folder with train.txt)
    /// and draws the sample of <paramref name="seed"/>. For lm the sizes count windows of
    /// <paramref name="context"/> tokens, and <paramref name="split"/> says where dev comes from
    /// (other tasks take only <see cref="TextSplit.Shuffled"/>).
    /// </summary>
    public static PreparedTask Load(TaskDefinition task, string path, SampleSizes sizes, long seed, ITextTokenizer tokenizer, int context,
        TextSplit split = TextSplit.Shuffled)
    {
        CheckSplit(task, split);
        if (task.Kind == TaskKind.LanguageModelling)
        {
            var corpus = TextCorpus.Load(path, split);
            List<int[]> Cut(string text) => TextCorpus.Windows(tokenizer.Encode(text, addBos: false), tokenizer.BosId, context);
            var train = Cut(corpus.Train);
            var validation = Cut(corpus.Validation);
            var windows = corpus.Dev is { } devText
                ? Sampling.DrawRegions(train, Cut(devText), validation, sizes, seed)
                : Sampling.Draw(train, validation, sizes, seed);
            var note = corpus.Regions is { } regions ? $"contiguous regions at line breaks: {regions}; sizes count windows of up to {context} tokens"
                : corpus.TrainFile == corpus.ValidationFile
                ? $"one text split {TextCorpus.TrainFraction * 100:F0}/{100 - TextCorpus.TrainFraction * 100:F0} at a line break; sizes count windows of up to {context} tokens"
                : $"sizes count windows of up to {context} tokens";
            return new(task, Summary(path, [corpus.TrainFile], [corpus.ValidationFile], windows.Report, note) with { Split = split }, null, windows);
        }
        var pools = TaskData.Load(task, path);
        var sample = Sampling.Draw(pools.Train, pools.Validation, sizes, seed);
        var carved = sample.Report.Carved
            ? $"only one labelled split: shuffled with the seed and carved into test ({sample.Report.Test}), then train, then dev, without overlap"
            : null;
        return new(task, Summary(path, pools.TrainFiles, pools.ValidationFiles, sample.Report, carved), sample, null);
    }

    /// <summary>Only the lm task cuts a text into regions; every other task keeps its own splits.</summary>
    public static void CheckSplit(TaskDefinition task, TextSplit split)
    {
        if (split != TextSplit.Shuffled && task.Kind != TaskKind.LanguageModelling)
            throw new ArgumentException($"split {IO.EnumNames.Name(split)}: only the lm task cuts its text into regions; {task.Name} keeps its own splits");
    }

    /// <summary>
    /// The lm task's window length: <paramref name="requested"/> tokens (BOS included), or the
    /// model's <paramref name="maxPositions"/> when null. Other tasks take none.
    /// </summary>
    public static int Context(TaskDefinition task, int? requested, int maxPositions)
    {
        if (requested is { } n && task.Kind != TaskKind.LanguageModelling)
            throw new ArgumentException($"context {n}: only the lm task cuts its text into windows; {task.Name} takes no context");
        return TextCorpus.WindowLength(requested, maxPositions);
    }

    static DataSummary Summary(string path, IReadOnlyList<string> trainFiles, IReadOnlyList<string> validationFiles, SampleReport r, string? note)
    {
        if (r.Short)
            note = (note is null ? "" : note + "; ") +
                $"pools smaller than asked: train {r.Train} of {r.Requested.Train}, dev {r.Dev} of {r.Requested.Dev}, test {r.Test} of {r.Requested.Eval}";
        return new(path, trainFiles, validationFiles, r.TrainPool, r.ValidationPool, r.Carved, r.Requested, r.Train, r.Dev, r.Test, note,
            DevPool: r.DevPool);
    }
}
