namespace ChainLora.Tests;

/// <summary>Approval files under Approvals/: what a test produces must equal the reviewed file byte for byte.</summary>
static class Approvals
{
    /// <summary>
    /// Passes when Approvals/<paramref name="name"/> holds <paramref name="actual"/>; otherwise writes it beside the
    /// approved file as NAME.received.EXT, to review and copy into tests/ChainLora.Tests/Approvals/, and fails.
    /// </summary>
    public static void Verify(string name, string actual)
    {
        var approvedPath = Path.Combine(AppContext.BaseDirectory, "Approvals", name);
        var receivedPath = Path.ChangeExtension(approvedPath, ".received" + Path.GetExtension(name));
        var approved = File.Exists(approvedPath) ? File.ReadAllText(approvedPath) : null;
        if (approved == actual) return;
        File.WriteAllText(receivedPath, actual);
        Assert.Fail(approved is null
            ? $"no approval file {approvedPath}; review {receivedPath} and copy it to tests/ChainLora.Tests/Approvals/{name}"
            : $"{name} differs from the approved file; received: {receivedPath}");
    }
}
