using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Tests.Tasks;

/// <summary>The lm task's splits on stories260K's tokenizer: which text each sample's windows hold.</summary>
public sealed class LmSplitTests : TempFolderTest
{
    // 90 lines of 13 characters: train region 72 lines, dev 9, test 9 (the cuts of TextCorpus).
    static readonly string Text = string.Concat(
        Enumerable.Repeat("apples grow.\n", 72).Concat(Enumerable.Repeat("zebras roam.\n", 9)).Concat(Enumerable.Repeat("queens rule.\n", 9)));

    static string Words(ITextTokenizer tokenizer, int[] window) => tokenizer.Decode(window.Skip(1));

    [Fact]
    public void Contiguous_dev_and_test_windows_hold_only_their_own_regions_while_shuffled_dev_holds_train_text()
    {
        var tokenizer = SentencePieceTextTokenizer.FromFile(SharedData.Require("models/stories260K/tok512.model"));
        var file = PathIn("text.txt");
        File.WriteAllText(file, Text);
        var lm = TaskRegistry.Find("lm");
        var sizes = new SampleSizes(20, 4, 4);

        var contiguous = PreparedTask.Load(lm, file, sizes, seed: 3, tokenizer, context: 8, TextSplit.Contiguous);
        var windows = contiguous.Windows!;
        Assert.Equal((20, 4, 4), (windows.Train.Count, windows.Dev.Count, windows.Test.Count));
        Assert.All(windows.Train, w => Assert.DoesNotContain("zebra", Words(tokenizer, w)));
        Assert.All(windows.Dev, w => Assert.Matches("^[zebras roam.\\s]+$", Words(tokenizer, w)));
        Assert.All(windows.Test, w => Assert.Matches("^[queens rule.\\s]+$", Words(tokenizer, w)));
        Assert.Equal((TextSplit.Contiguous, windows.Report.DevPool), (contiguous.Data.Split, contiguous.Data.DevPool));
        Assert.Contains("contiguous regions at line breaks: text.txt characters [0, 936) train, [936, 1053) dev", contiguous.Data.Note);

        // The first study's split: dev windows are cut from the same text as train's.
        var shuffled = PreparedTask.Load(lm, file, sizes, seed: 3, tokenizer, context: 8);
        Assert.Contains(shuffled.Windows!.Dev, w => Words(tokenizer, w).Contains("apples", StringComparison.Ordinal));
        Assert.Equal(shuffled.Windows.Test, windows.Test);
        Assert.Equal((TextSplit.Shuffled, null), (shuffled.Data.Split, shuffled.Data.DevPool));

        var e = Assert.Throws<ArgumentException>(() => PreparedTask.CheckSplit(TaskRegistry.Find("sst2"), TextSplit.Contiguous));
        Assert.Equal("split contiguous: only the lm task cuts its text into regions; sst2 keeps its own splits", e.Message);
    }
}
