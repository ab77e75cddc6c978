namespace ChainLora.Tests.Training;

/// <summary>docs/ARCHITECTURE.md shows Algorithm 1 as ChainTrainer.Train is written, line for line.</summary>
public class AlgorithmOneDocTests
{
    const string Marker = "<!-- ChainTrainer.Train -->";

    [Fact]
    public void The_architecture_page_shows_ChainTrainer_Train_as_it_is_written()
    {
        var page = File.ReadAllLines(RepoFiles.Require("docs/ARCHITECTURE.md"));
        var start = Array.IndexOf(page, Marker);
        Assert.True(start >= 0, $"docs/ARCHITECTURE.md: no {Marker} before the Algorithm 1 snippet");
        Assert.Equal("```csharp", page[start + 1]);
        var snippet = page.Skip(start + 2).TakeWhile(l => l != "```").ToList();
        Assert.Contains(snippet, l => l.Contains("TieKnot(", StringComparison.Ordinal));

        // The method is a member of the class: one level (4 spaces) deeper than the page shows it.
        var code = File.ReadAllLines(RepoFiles.Require("src/ChainLora/Training/ChainTrainer.cs"))
            .Select(l => l.StartsWith("    ", StringComparison.Ordinal) ? l[4..] : l).ToList();
        var first = code.IndexOf(snippet[0]);
        Assert.True(first >= 0, $"ChainTrainer.cs has no line '{snippet[0]}'");
        Assert.Equal(snippet, code.Skip(first).Take(snippet.Count));
    }
}
