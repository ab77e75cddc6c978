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
    TextSplit? Split = null, int? DevPool = null, SftTruncation? Truncation = null, PackingSummary? Packing = null);

/// <summary>sft with packing: <paramref name="Examples"/> train examples in <paramref name="Rows"/> rows of at most <paramref name="Capacity"/> positions, filled to <paramref name="Fill"/> on average.</summary>
public sealed record PackingSummary(int Examples, int Rows, int Capacity, double Fill);

/// <summary>
/// sft: of the drawn examples (train, dev and test), how many were longer than <paramref name="MaxTokens"/>
/// and how many tokens they held beyond it, cut from their ends under <see cref="SftTruncationMode.Cut"/>;
/// <paramref name="Dropped"/> are not used: left with no response token after the cut, or (<see cref="SftTruncationMode.Drop"/>) too long.
/// </summary>
public sealed record SftTruncation(int MaxTokens, int CutExamples, int CutTokens, int Dropped, SftTruncationMode Mode = SftTruncationMode.Cut);

/// <summary>What happens to an sft example longer than the most tokens an example keeps.</summary>
public enum SftTruncationMode
{
    /// <summary>Keep its start, cut tokens from its end (TRL's truncation_mode keep_start); result.json says how many.</summary>
    Cut,
    /// <summary>Leave it out; result.json counts it.</summary>
    Drop,
    /// <summary>Refuse the data, naming the example's file and line and its length.</summary>
    Error,
}

/// <summary>
/// How sft examples become token ids: <see cref="Render"/> (the model's chat template) renders
/// conversations, <see cref="TrainOnInputs"/> puts the loss on every token, and <see cref="Truncation"/>
/// says what happens to an example longer than the context.
/// </summary>
public sealed record SftSettings(ChatRenderer? Render = null, bool TrainOnInputs = false, SftTruncationMode Truncation = SftTruncationMode.Cut);

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

    /// <summary>This task with its train sample's packing recorded in its data summary.</summary>
    public PreparedTask WithPacking(PackingSummary packing) => new(Task, Data with { Packing = packing }, Examples, Windows, Sft);

    /// <summary>This task with <paramref name="note"/> added to its data summary's note; itself when null.</summary>
    public PreparedTask WithNote(string? note) => note is null ? this
        : new(Task, Data with { Note = Data.Note is { } n ? $"{n}; {note}" : note }, Examples, Windows, Sft);

    PreparedTask(TaskDefinition task, DataSummary data, TaskSample<TaskExample>? examples, TaskSample<int[]>? windows,
        TaskSample<SftEncoded>? sft = null) =>
        (Task, Data, Examples, Windows, Sft) = (task, data, examples, windows, sft);

    /// <summary>
    /// Reads <paramref name="path"/> (a task folder; for lm a text file or a folder with train.txt)
    /// and draws the sample of <paramref name="seed"/>. For lm the sizes count windows of
    /// <paramref name="context"/> tokens, and <paramref name="split"/> says where dev comes from
    /// (other tasks take only <see cref="TextSplit.Shuffled"/>); for sft it is the most tokens an example keeps, and
    /// <paramref name="sft"/> says how examples are encoded.
    /// </summary>
    public static PreparedTask Load(TaskDefinition task, string path, SampleSizes sizes, long seed, ITextTokenizer tokenizer, int context,
        TextSplit split = TextSplit.Shuffled, SftSettings? sft = null)
    {
        CheckSplit(task, split);
        if (task.Kind == TaskKind.Sft) return LoadSft(task, path, sizes, seed, tokenizer, context, sft ?? new SftSettings());
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
        SftSettings settings)
    {
        var trainOnInputs = settings.TrainOnInputs;
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
                var encoded = SftEncoder.Encode(example, tokenizer, settings.Render, maxTokens, trainOnInputs);
                if (encoded.CutTokens > 0)
                {
                    if (settings.Truncation == SftTruncationMode.Error)
                        throw new InvalidDataException($"{example.Location}: {maxTokens + encoded.CutTokens} tokens, longer than the {maxTokens} an example " +
                            "may hold (--context); raise --context, or pass --truncation cut or drop");
                    (cutExamples, cutTokens) = (cutExamples + 1, cutTokens + encoded.CutTokens);
                }
                // The first token is never predicted: an example needs a response token after it.
                if (encoded.CutTokens > 0 && settings.Truncation == SftTruncationMode.Drop) dropped++;
                else if (encoded.LossMask.Skip(1).Any(m => m)) kept.Add(encoded);
                else dropped++;
            }
            return kept;
        }
        var encodedSample = new TaskSample<SftEncoded>(Encode(sample.Train), Encode(sample.Dev), Encode(sample.Test), sample.Report);
        var files = DataFiles(path, splits);
        var note = $"examples of up to {maxTokens} tokens" + (trainOnInputs ? ", loss on every token (--train-on-inputs)" : ", loss on the responses");
        if (sample.Report.Carved) note += "; only one split: shuffled with the seed and carved into test, then train, then dev, without overlap";
        if (dropped > 0)
            note += settings.Truncation == SftTruncationMode.Drop
                ? $"; {dropped} examples too long or left with no response token were dropped"
                : $"; {dropped} examples left with no response token after truncation were dropped";
        var summary = Summary(path, files.Train, files.Validation, sample.Report, note) with
        {
            Train = encodedSample.Train.Count,
            Dev = encodedSample.Dev.Count,
            Test = encodedSample.Test.Count,
            Truncation = new SftTruncation(maxTokens, cutExamples, cutTokens, dropped, settings.Truncation),
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
