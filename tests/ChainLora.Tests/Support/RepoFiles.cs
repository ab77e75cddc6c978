namespace ChainLora.Tests;

/// <summary>Files committed in this repository (experiment configs, the cells of finished studies), found from the test binaries.</summary>
static class RepoFiles
{
    /// <summary>The folder holding ChainLora.slnx above the test binaries, or null (a test run from a copied build).</summary>
    public static string? Root { get; } = Find();

    /// <summary>Full path of <paramref name="relativePath"/> in the repository; skips the test when it is not there.</summary>
    public static string Require(string relativePath)
    {
        if (Root is null) Assert.Skip($"the repository (ChainLora.slnx) is not above the test binaries: needs {relativePath}");
        var path = Path.Combine(Root, relativePath);
        if (!File.Exists(path) && !Directory.Exists(path)) Assert.Skip($"{relativePath} is not in the repository at {Root}");
        return path;
    }

    static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ChainLora.slnx"))) return dir.FullName;
        return null;
    }
}
