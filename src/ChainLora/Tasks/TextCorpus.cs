// The lm task's data (domain adaptation on plain text): a folder with train.txt and optionally
// val.txt, or one text file. Without a separate validation text the training text is split 90/10
// at a line break. With the contiguous split (TextSplit.Contiguous) the training text is cut once
// more, 8/9 to 1/9 at a line break, and dev comes from that last ninth: one file becomes train 80%,
// dev 10%, test 10%, three regions in the text's order. Texts are tokenized once and cut into
// TextCorpus.Windows (BOS + context - 1 tokens), the windows `chainlora perplexity` scores, so
// held-out NLL matches that command.
namespace ChainLora.Tasks;

/// <summary>Where the lm task's dev windows come from.</summary>
public enum TextSplit
{
    /// <summary>
    /// The first lm study's split: train and dev are drawn, shuffled with the seed, from the same
    /// training text, so dev windows sit between train windows in the same passages; test is the
    /// validation text (the last 10% of one file).
    /// </summary>
    Shuffled,
    /// <summary>
    /// Train, dev and test from contiguous, disjoint regions: the training text's first 8/9, its
    /// last 1/9, and the validation text (one file: 80% / 10% / 10%, the same test as Shuffled).
    /// </summary>
    Contiguous,
}

/// <summary>
/// The texts and the files they came from (the same file twice when one was split). <paramref name="Dev"/>
/// is the dev region of a contiguous split, cut from the end of the training text; null otherwise.
/// <paramref name="Regions"/> says where each text lies in its file (character offsets).
/// </summary>
public sealed record TextCorpus(string Train, string Validation, string TrainFile, string ValidationFile, string? Dev = null, string? Regions = null)
{
    public const double TrainFraction = 0.9;
    /// <summary>The share of the training text a contiguous split keeps for train; dev is the rest (10% of one file).</summary>
    public const double ContiguousTrainShare = 8.0 / 9.0;

    /// <summary>BOS + up to (<paramref name="context"/> - 1) consecutive tokens of <paramref name="ids"/> per window.</summary>
    public static List<int[]> Windows(IReadOnlyList<int> ids, int bosId, int context)
    {
        if (context < 2) throw new ArgumentException($"context {context}: must be at least 2");
        var chunk = context - 1;
        var windows = new List<int[]>();
        for (var start = 0; start < ids.Count; start += chunk)
            windows.Add([bosId, .. ids.Skip(start).Take(chunk)]);
        return windows;
    }

    /// <summary>Tokens per window: <paramref name="requested"/>, or the model's <paramref name="maxPositions"/> when null.</summary>
    public static int WindowLength(int? requested, int maxPositions)
    {
        if (requested is not { } n) return maxPositions;
        if (n < 2 || n > maxPositions) throw new ArgumentException($"context {n}: must be between 2 and the model's {maxPositions} positions");
        return n;
    }

    /// <summary>
    /// A fixed sample of <paramref name="count"/> windows of the text file <paramref name="path"/> (all of them
    /// when it holds fewer): the same for every seed and run, so forgetting is measured on one set.
    /// </summary>
    public static List<int[]> SourceSample(string path, Tokenization.ITextTokenizer tokenizer, int context, int count)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"source text not found: {path}", path);
        if (count < 1) throw new ArgumentException($"source windows {count}: must be at least 1");
        var windows = Windows(tokenizer.Encode(ReadText(path), addBos: false), tokenizer.BosId, context);
        return Sampling.Shuffle(windows, 0).Take(count).ToList();
    }

    public static TextCorpus Load(string path, TextSplit split = TextSplit.Shuffled)
    {
        var corpus = LoadTexts(path);
        if (split == TextSplit.Shuffled) return corpus;
        var (train, dev) = SplitText(corpus.Train, ContiguousTrainShare);
        // Offsets in each file: a split file's validation text starts where its training text ends.
        var valStart = corpus.TrainFile == corpus.ValidationFile ? corpus.Train.Length : 0;
        var regions = $"{Path.GetFileName(corpus.TrainFile)} characters [0, {train.Length}) train, [{train.Length}, {corpus.Train.Length}) dev; " +
            $"{Path.GetFileName(corpus.ValidationFile)} characters [{valStart}, {valStart + corpus.Validation.Length}) test";
        return corpus with { Train = train, Dev = dev, Regions = regions };
    }

    static TextCorpus LoadTexts(string path)
    {
        if (File.Exists(path)) return FromOne(path);
        if (!Directory.Exists(path)) throw new FileNotFoundException($"lm data not found: {path} (a text file, or a folder with train.txt)");
        var train = Path.Combine(path, "train.txt");
        if (!File.Exists(train)) throw new FileNotFoundException($"{path}: no train.txt (the lm task reads train.txt and optionally val.txt)");
        var val = Path.Combine(path, "val.txt");
        return File.Exists(val) ? new(ReadText(train), ReadText(val), train, val) : FromOne(train);
    }

    static TextCorpus FromOne(string file)
    {
        var (train, validation) = SplitText(ReadText(file));
        return new(train, validation, file, file);
    }

    static string ReadText(string file)
    {
        var text = File.ReadAllText(file);
        return text.Trim().Length > 0 ? text : throw new InvalidDataException($"{file}: no text");
    }

    /// <summary>
    /// The text up to the last line break at or before the <paramref name="fraction"/> point, and
    /// the rest (whole lines stay together); without such a break, up to the next one; a single
    /// line is cut at the fraction itself.
    /// </summary>
    public static (string Train, string Validation) SplitText(string text, double fraction = TrainFraction)
    {
        var cut = (int)(text.Length * fraction);
        var before = cut > 0 ? text.LastIndexOf('\n', cut - 1) : -1;
        var after = text.IndexOf('\n', cut);
        if (before >= 0) cut = before + 1;
        else if (after >= 0 && after + 1 < text.Length) cut = after + 1;
        if (cut <= 0 || cut >= text.Length)
            throw new InvalidDataException($"a text of {text.Length} characters is too short to split {fraction * 100:F0}/{100 - fraction * 100:F0}");
        return (text[..cut], text[cut..]);
    }
}
