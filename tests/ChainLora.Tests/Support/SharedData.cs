namespace ChainLora.Tests;

/// <summary>
/// Locates the read-only reference folder <c>shared/</c> (real models, corpora, datasets), which lives
/// beside the repository (../shared) and never inside it. Tests that need it skip when it is absent.
/// </summary>
static class SharedData
{
    const string EnvVar = "CHAINLORA_SHARED";

    /// <summary>$CHAINLORA_SHARED if it exists, else the first <c>shared/</c> holding README.md
    /// beside the test binaries or one of their ancestors; null when neither exists.</summary>
    public static string? Root { get; } = Find();

    /// <summary>Full path of <paramref name="relativePath"/> under shared/; skips the test when missing.</summary>
    public static string Require(string relativePath)
    {
        if (Root is null)
            Assert.Skip($"../shared not found: needs {relativePath}; set {EnvVar} to the shared folder");
        var path = Path.Combine(Root, relativePath);
        if (!File.Exists(path) && !Directory.Exists(path))
            Assert.Skip($"../shared found at '{Root}' but '{relativePath}' is missing; set {EnvVar} to a complete copy");
        return path;
    }

    static string? Find()
    {
        if (Environment.GetEnvironmentVariable(EnvVar) is { Length: > 0 } env && Directory.Exists(env))
            return Path.GetFullPath(env);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (File.Exists(Path.Combine(candidate, "README.md"))) return candidate;
        }
        return null;
    }
}
