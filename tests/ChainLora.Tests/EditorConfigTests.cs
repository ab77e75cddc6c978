namespace ChainLora.Tests;

/// <summary>
/// The format check (`dotnet format --verify-no-changes` in .ci/run) fails on an unnecessary using only
/// where .editorconfig raises IDE0005 for every C# file: a rule written under a narrower section
/// (it once sat under the Models section) silently checks that folder alone.
/// </summary>
public sealed class EditorConfigTests
{
    /// <summary>The section header each setting line of <paramref name="text"/> sits under, keyed by the line.</summary>
    static List<(string Section, string Line)> Settings(string text)
    {
        var section = "";
        var settings = new List<(string, string)>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith('[')) section = line;
            else settings.Add((section, line.Replace(" ", "")));
        }
        return settings;
    }

    static List<string> SectionsRaising(string text, string rule) =>
        Settings(text).Where(s => s.Line == $"dotnet_diagnostic.{rule}.severity=warning").Select(s => s.Section).ToList();

    [Fact]
    public void Unnecessary_usings_are_raised_for_every_csharp_file()
    {
        var text = File.ReadAllText(RepoFiles.Require(".editorconfig"));
        Assert.Equal(["[*.cs]"], SectionsRaising(text, "IDE0005"));
    }

    [Fact]
    public void A_rule_under_a_narrower_section_is_told_apart()
    {
        Assert.Equal(["[{src/ChainLora/Models/**.cs}]"],
            SectionsRaising("[*.cs]\nx = 1\n[{src/ChainLora/Models/**.cs}]\ndotnet_diagnostic.IDE0005.severity = warning\n", "IDE0005"));
    }
}
