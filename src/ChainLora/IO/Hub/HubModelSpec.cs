// `org/name[@revision]`, validated as huggingface_hub's utils/_validators.py validate_repo_id does.
using System.Text.RegularExpressions;

namespace ChainLora.IO.Hub;

/// <summary>A model repository on the Hub and the revision (branch, tag or 40-hex commit) wanted from it.</summary>
public sealed partial record HubModelSpec(string RepoId, string Revision)
{
    public const string DefaultRevision = "main";

    /// <summary>True when <see cref="Revision"/> names a commit, which needs no ref lookup.</summary>
    public bool RevisionIsCommit => IsCommitHash(Revision);

    /// <summary>The cache folder name, as huggingface_hub's repo_folder_name: "models--org--name".</summary>
    public string FolderName => "models--" + RepoId.Replace("/", "--", StringComparison.Ordinal);

    public override string ToString() => $"{RepoId}@{Revision}";

    /// <summary>Parses <c>name</c>, <c>org/name</c> or either with <c>@revision</c>; the error names the spec and the rule it breaks.</summary>
    public static HubModelSpec Parse(string spec) =>
        TryParse(spec, out var parsed, out var problem) ? parsed : throw new ArgumentException($"model '{spec}': {problem}");

    public static bool TryParse(string spec, out HubModelSpec parsed, out string problem)
    {
        parsed = null!;
        var at = spec.IndexOf('@', StringComparison.Ordinal);
        var repoId = at < 0 ? spec : spec[..at];
        var revision = at < 0 ? DefaultRevision : spec[(at + 1)..];
        problem = RepoIdProblem(repoId) ?? RevisionProblem(revision) ?? "";
        if (problem.Length > 0) return false;
        parsed = new HubModelSpec(repoId, revision);
        return true;
    }

    public static bool IsCommitHash(string revision) => CommitHashPattern().IsMatch(revision);

    /// <summary>True when <paramref name="spec"/>'s part before any '@' is a valid repo id, whatever follows the '@'.</summary>
    public static bool HasValidRepoId(string spec) => RepoIdProblem(spec.Split('@')[0]) is null;

    /// <summary>The rule <paramref name="repoId"/> breaks, in huggingface_hub's words, or null when it is valid.</summary>
    static string? RepoIdProblem(string repoId)
    {
        if (repoId.Count(c => c == '/') > 1) return $"repo id '{repoId}' must be 'name' or 'org/name'";
        if (!RepoIdPattern().IsMatch(repoId))
            return $"repo id '{repoId}' may use only letters, digits, '-', '_' and '.'; '-' and '.' cannot start or end a name; at most 96 characters";
        if (repoId.Contains("--", StringComparison.Ordinal) || repoId.Contains("..", StringComparison.Ordinal))
            return $"repo id '{repoId}' cannot contain '--' or '..'";
        if (repoId.EndsWith(".git", StringComparison.Ordinal)) return $"repo id '{repoId}' cannot end with '.git'";
        return null;
    }

    /// <summary>
    /// A revision becomes a path under refs/ in the cache (refs/pr/1 is a valid branch), so it may
    /// hold '/' but nothing that climbs out of refs/ or that git forbids in a ref name.
    /// </summary>
    static string? RevisionProblem(string revision)
    {
        if (revision.Length == 0) return "empty revision after '@'";
        if (revision.StartsWith('/') || revision.EndsWith('/') || revision.Contains("//", StringComparison.Ordinal)
            || revision.Split('/').Any(part => part is "." or "..") || revision.Contains("..", StringComparison.Ordinal)
            || revision.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c is '\\' or ':' or '?' or '*' or '[' or '~' or '^'))
            return $"revision '{revision}' is not a valid branch, tag or commit name";
        return null;
    }

    // validate_repo_id's REPO_ID_REGEX with \w spelled out in ASCII: word characters at both ends
    // of the optional namespace and of the name (the regex's \b), the name 1 to 96 characters.
    [GeneratedRegex(@"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?/)?[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHashPattern();
}
