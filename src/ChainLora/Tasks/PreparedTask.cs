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
    TextSplit? Split = null, int? DevPool = null, SftTruncation? Truncation = null);

/// <summary>
/// sft: of the drawn examples (train, dev and test), how many were longer than <paramref name="MaxTokens"/>
/// and how many tokens that cut from their ends; <paramref name="Dropped"/> were left with no response token and are not used.
/// </summary>
public sealed record SftTruncation(int MaxTokens, int CutExamples, int CutTokens, int Dropped);

public sealed class PreparedTask
{
    public TaskDefinition Task { get; }
    public DataSummary Data { get; }
    /// <summary>Rendered examples (every task but lm).</summary>
    public TaskSample<TaskExample>? Examples { get; }
    /// <summary>Token windows, each starting with BOS (the lm task).</summary>
    public TaskSample<int[]>? Windows { get; }
    /// <summary>Token ids with their loss masks (the sft task), each with at least one response token to predict.</summary>
    public TaskSample<SftEncoded>? Sft { get; }

    PreparedTask(TaskDefinition task, DataSummary data, TaskSample<TaskExample>? examples, TaskSample<int[]>? windows,
        TaskSample<SftEncoded>? sft = null) =>
        (Task, Data, Examples, Windows, Sft) = (task, data, examples, windows, sft);

    /// <summary>
    /// Reads <paramref name="path"/> (a task folder; for lm a text file or a folder with train.txt)
    /// and draws the sample of <paramref name="seed"/>. For lm the sizes count windows of
    /// <paramref name="context"/> tokens, and <paramref name="split"/> says where dev comes from
    /// (other tasks take only <see cref="TextSplit.Shuffled"/>); for sft it is the most tokens an example keeps, and
    /// <paramref name="render"/> (the model's chat template) renders conversations.
    /// </summary>
    public static PreparedTask Load(TaskDefinition task, string path, SampleSizes sizes, long seed, ITextTokenizer tokenizer, int context,
        TextSplit split = TextSplit.Shuffled, ChatRenderer? render = null, bool trainOnInputs = false)
    {
        CheckSplit(task, split);
        if (task.Kind == TaskKind.Sft) return LoadSft(task, path, sizes, seed, tokenizer, context, render, trainOnInputs);
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

    static PreparedTask LoadSft(TaskDefinition task, string path, SampleSizes sizes, long seed, ITextTokenizer tokenizer, int maxTokens,
        ChatRenderer? render, bool trainOnInputs)
    {
        var splits = SftData.Read(path);
        IReadOnlyList<SftExample> Pool(Split s) => splits.TryGetValue(s, out var e) ? e : [];
        // A folder's test file is the held-out pool when it has no validation file, as for the other tasks.
        var validation = Pool(Split.Validation).Count > 0 ? Pool(Split.Validation) : Pool(Split.Test);
        var sample = Sampling.Draw(Pool(Split.Train), validation, sizes, seed);
        var (cutExamples, cutTokens, dropped) = (0, 0, 0);
        List<SftEncoded> Encode(IReadOnlyList<SftExample> examples)
        {
            var kept = new List<SftEncoded>();
            foreach (var example in examples)
            {
                var encoded = SftEncoder.Encode(example, tokenizer, render, maxTokens, trainOnInputs);
                if (encoded.CutTokens > 0) (cutExamples, cutTokens) = (cutExamples + 1, cutTokens + encoded.CutTokens);
                // The first token is never predicted: an example needs a response token after it.
                if (encoded.LossMask.Skip(1).Any(m => m)) kept.Add(encoded);
                else dropped++;
            }
            return kept;
        }
        var encodedSample = new TaskSample<SftEncoded>(Encode(sample.Train), Encode(sample.Dev), Encode(sample.Test), sample.Report);
        var files = DataFiles(path, splits);
        var note = $"examples of up to {maxTokens} tokens" + (trainOnInputs ? ", loss on every token (--train-on-inputs)" : ", loss on the responses");
        if (sample.Report.Carved) note += "; only one split: shuffled with the seed and carved into test, then train, then dev, without overlap";
        if (dropped > 0) note += $"; {dropped} examples left with no response token after truncation were dropped";
        var summary = Summary(path, files.Train, files.Validation, sample.Report, note) with
        {
            Train = encodedSample.Train.Count,
            Dev = encodedSample.Dev.Count,
            Test = encodedSample.Test.Count,
            Truncation = new SftTruncation(maxTokens, cutExamples, cutTokens, dropped),
        };
        return new(task, summary, null, null, encodedSample);
    }

    static (IReadOnlyList<string> Train, IReadOnlyList<string> Validation) DataFiles(string path, IReadOnlyDictionary<Split, IReadOnlyList<SftExample>> splits)
    {
        if (File.Exists(path)) return ([path], []);
        var found = Tasks.DataFiles.Find(path);
        IReadOnlyList<string> Of(Split s) => found.TryGetValue(s, out var f) ? [.. f] : [];
        return (Of(Split.Train), Of(Split.Validation).Count > 0 ? Of(Split.Validation) : Of(Split.Test));
    }

    /// <summary>
    /// The lm task's window length: <paramref name="requested"/> tokens (BOS included), or the
    /// model's <paramref name="maxPositions"/> when null. Other tasks take none.
    /// </summary>
    public static int Context(TaskDefinition task, int? requested, int maxPositions)
    {
        if (requested is { } n && task.Kind is not (TaskKind.LanguageModelling or TaskKind.Sft))
            throw new ArgumentException($"context {n}: only the lm task cuts its text into windows and the sft task its examples; {task.Name} takes none");
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
