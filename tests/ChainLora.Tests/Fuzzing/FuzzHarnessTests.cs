namespace ChainLora.Tests.Fuzzing;

/// <summary>The fuzz harness itself catches what it promises to: a foreign exception, a hang, a memory blow-up.</summary>
[Collection(nameof(FuzzCollection))]
public class FuzzHarnessTests
{
    static readonly Dictionary<string, byte[]> Seed = new() { ["input.txt"] = "hello"u8.ToArray() };

    [Fact]
    public void A_foreign_exception_fails_naming_its_type() =>
        Assert.Contains("ArgumentException: boom",
            Assert.ThrowsAny<Exception>(() => Fuzz.Folder(Seed, ["input.txt"], _ => throw new ArgumentException("boom"), iterations: 2)).Message);

    [Fact]
    public void A_typed_error_passes() =>
        Fuzz.Folder(Seed, ["input.txt"], _ => throw new InvalidDataException("refused"), iterations: 5);

    [Fact]
    public void A_hang_fails() =>
        Assert.Contains("took more than 1 s",
            Assert.ThrowsAny<Exception>(() => Fuzz.Folder(Seed, ["input.txt"], _ => Thread.Sleep(3000), seconds: 1, iterations: 1)).Message);

    [Fact]
    public void A_reader_that_allocates_past_the_bound_fails()
    {
        if (!ChainLora.Runtime.ProcessMemory.ResetPeak()) Assert.Skip("the kernel does not allow resetting the peak resident set (/proc/self/clear_refs)");
        var e = Assert.ThrowsAny<Exception>(() => Fuzz.Folder(Seed, ["input.txt"], _ =>
        {
            // Touched page by page, as a reader trusting a huge length would fill what it allocated.
            var bytes = new byte[(int)((Fuzz.PeakMemoryBoundMb + 200) * 1024 * 1024)];
            for (var i = 0; i < bytes.Length; i += 4096) bytes[i] = 1;
            GC.KeepAlive(bytes);
            throw new InvalidDataException("too big");
        }, iterations: 1));
        Assert.Contains("peak resident set grew", e.Message);
    }
}
