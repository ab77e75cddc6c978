namespace ChainLora.Tests.Cli;

/// <summary>
/// The signal tests' children get SIGINT whatever the test run inherited: started from a background
/// job of a script (or `nohup ... &amp;` there), the test process ignores SIGINT, exec passes that on, and
/// a plainly started child then exits 0 where the tests expect 130.
/// </summary>
public sealed class SignalHarnessTests
{
    static bool IgnoresSigint(params string[] command)
    {
        var (exit, output, error) = ChildProcess.Run("/usr/bin/env", ["--ignore-signal=INT", .. command, "grep", "SigIgn:", "/proc/self/status"]);
        Assert.True(exit == 0, error);
        return (Convert.ToUInt64(output["SigIgn:".Length..].Trim(), 16) & 0b10) != 0;
    }

    [Fact]
    public void A_child_started_for_signals_has_SIGINT_at_its_default_under_a_parent_that_ignores_it()
    {
        if (ChildProcess.Run("/usr/bin/env", ["--default-signal=INT", "true"]).Exit != 0)
            Assert.Skip("this system's env has no --default-signal (coreutils < 8.31)");
        Assert.True(IgnoresSigint(), "the ignoring parent is not simulated");                     // what the suite met under `trap '' INT`
        Assert.True(IgnoresSigint("/bin/sh", "-c", "trap - INT; exec \"$@\"", "sh"), "sh reset it"); // why a shell wrapper is no fix
        Assert.False(IgnoresSigint(CliProcess.DefaultSigint));
    }
}
