// Mutation fuzzing with CsCheck: a valid file is mutated (truncated, bytes flipped or inserted,
// numbers made huge or negative, chunks dropped or repeated) and handed to a reader, which must
// either accept it or fail with one of our typed errors within a time bound. A failure prints
// CsCheck's seed, which replays it. CHAINLORA_FUZZ_ITERATIONS sets the inputs per reader (200 in the
// normal suite; the long run uses 10000: see docs/RELIABILITY.md).
using System.Text;
using CsCheck;

namespace ChainLora.Tests;

static class Fuzz
{
    public static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("CHAINLORA_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 200;

    static readonly byte[][] Numbers = [.. new[] { "99999999999999999999", "-1", "0", "2147483648", "1e400", "NaN", "-9223372036854775808", "4294967296" }
        .Select(Encoding.ASCII.GetBytes)];

    /// <summary><paramref name="seed"/> with one to four mutations.</summary>
    public static Gen<byte[]> Mutations(byte[] seed) =>
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue]).Array[1, 4]
            .Select(ops => ops.Aggregate(seed, (bytes, op) => Apply(bytes, op.Item1, op.Item2, op.Item3)));

    static byte[] Apply(byte[] b, int kind, int x, int y)
    {
        if (b.Length == 0) return [(byte)x];
        var at = x % b.Length;
        switch (kind)
        {
            case 0: return b[..at];                                                   // truncated
            case 1: { var c = (byte[])b.Clone(); c[at] ^= (byte)(1 + y % 255); return c; } // a byte flipped
            case 2: return [.. b[..at], (byte)y, .. b[at..]];                          // a byte inserted
            case 3:                                                                   // a number replaced
            {
                var digit = Array.FindIndex(b, at, c => c is >= (byte)'0' and <= (byte)'9');
                if (digit < 0) digit = at;
                var end = digit;
                while (end < b.Length && b[end] is >= (byte)'0' and <= (byte)'9') end++;
                return [.. b[..digit], .. Numbers[y % Numbers.Length], .. b[end..]];
            }
            case 4: { var len = Math.Min(b.Length - at, 1 + y % 64); return [.. b[..at], .. b[(at + len)..]]; } // a chunk dropped
            default: { var len = Math.Min(b.Length - at, 1 + y % 64); return [.. b[..(at + len)], .. b[at..]]; } // a chunk repeated
        }
    }

    /// <summary>
    /// Writes each mutation of <paramref name="seed"/> to a file named <paramref name="fileName"/> in a
    /// fresh folder (beside copies of <paramref name="companions"/>) and calls <paramref name="read"/>
    /// on it: see <see cref="Folder"/> for what it must do.
    /// </summary>
    public static void Reader(byte[] seed, string fileName, Action<string> read, IReadOnlyDictionary<string, byte[]>? companions = null,
        Type[]? alsoAllowed = null, int seconds = 10) =>
        Folder(new Dictionary<string, byte[]>(companions ?? new Dictionary<string, byte[]>()) { [fileName] = seed }, [fileName],
            dir => read(Path.Combine(dir, fileName)), alsoAllowed, seconds);

    /// <summary>A copy of the failing input, kept for replaying it outside the test; its path.</summary>
    static string Keep(string dir, string name)
    {
        var kept = Path.Combine(Path.GetTempPath(), "chainlora-fuzz-failures", $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Path.GetFileName(name)}");
        Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
        File.Copy(Path.Combine(dir, name), kept, overwrite: true);
        return kept;
    }

    /// <summary>
    /// Where the input being read waits while the reader runs: what names the input if the process dies
    /// (exit 139 or 134) with no exception to report. Deleted once the reader returns or throws.
    /// </summary>
    static string InHand(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "chainlora-fuzz-failures");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, $"in-hand-{Environment.ProcessId}-{Path.GetFileName(name)}");
    }

    /// <summary>A resident-set growth per input above this is a failure: no input of a few KB deserves it.</summary>
    public const double PeakMemoryBoundMb = 512;

    /// <summary>
    /// Writes <paramref name="files"/> to a fresh folder with one of <paramref name="mutated"/> mutated
    /// (drawn per input) and calls <paramref name="read"/> on the folder. It must return, or throw
    /// <see cref="InvalidDataException"/> (or a type in <paramref name="alsoAllowed"/>), within
    /// <paramref name="seconds"/>, and the process's peak resident set must not grow by more than
    /// <see cref="PeakMemoryBoundMb"/> while it runs (the fuzz classes run alone: see <see cref="FuzzCollection"/>).
    /// </summary>
    public static void Folder(IReadOnlyDictionary<string, byte[]> files, IReadOnlyList<string> mutated, Action<string> read,
        Type[]? alsoAllowed = null, int seconds = 10, int? iterations = null)
    {
        var root = Directory.CreateTempSubdirectory("fuzz-").FullName;
        var count = 0;
        var worstMb = 0.0;
        try
        {
            Gen.Int[0, mutated.Count - 1].SelectMany(i => Mutations(files[mutated[i]]).Select(bytes => (Name: mutated[i], Bytes: bytes))).Sample(input =>
            {
                // How much the peak resident set grew while the reader ran on this input (NaN where it cannot be measured).
                double ReadOnce()
                {
                    var dir = Path.Combine(root, $"{count++}");
                    Directory.CreateDirectory(dir);
                    foreach (var (name, content) in files)
                    {
                        var path = Path.Combine(dir, name);
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        File.WriteAllBytes(path, name == input.Name ? input.Bytes : content);
                    }
                    // The input in hand, kept until the reader is done with it: a crash of the whole process
                    // (a native fault no exception reports) leaves it behind, named by target and process.
                    var inHand = InHand(input.Name);
                    File.WriteAllBytes(inHand, input.Bytes);
                    var measured = ChainLora.Runtime.ProcessMemory.ResetPeak();
                    var before = ChainLora.Runtime.ProcessMemory.CurrentRssMb();
                    var work = Task.Run(() => read(dir));
                    try
                    {
                        if (!work.Wait(TimeSpan.FromSeconds(seconds)))
                            throw new TimeoutException($"{Keep(dir, input.Name)}: " + $"the reader took more than {seconds} s on a {input.Bytes.Length}-byte input");
                    }
                    catch (AggregateException e) when (e.InnerException is InvalidDataException
                        || (alsoAllowed ?? []).Any(t => t.IsInstanceOfType(e.InnerException)))
                    {
                    }
                    catch (AggregateException e) when (e.InnerException is { } inner)
                    {
                        throw new InvalidOperationException($"{Keep(dir, input.Name)}: {inner.GetType().Name}: {inner.Message}", inner);
                    }
                    finally
                    {
                        Directory.Delete(dir, recursive: true);
                        File.Delete(inHand);
                    }
                    return measured ? ChainLora.Runtime.ProcessMemory.PeakRssMb() - before : double.NaN;
                }
                // The peak is the whole process's: a growth past the bound is confirmed by reading the input
                // again, so that a reader that allocates fails twice while a spike from elsewhere (once seen in
                // the full suite, the size of FuzzHarnessTests' own allocation) does not fail an innocent input.
                var grew = ReadOnce();
                if (grew > PeakMemoryBoundMb)
                {
                    // The first read's garbage goes back to the kernel first: left resident, the second read would
                    // reuse it without growing the resident set, and a reader that allocates would pass.
                    GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                    grew = Math.Min(grew, ReadOnce());
                }
                if (double.IsNaN(grew)) return;
                worstMb = Math.Max(worstMb, grew);
                if (grew > PeakMemoryBoundMb)
                    throw new InsufficientMemoryException($"{input.Name}: the reader's peak resident set grew by {grew:F0} MB on a {input.Bytes.Length}-byte input (read twice)");
            }, iter: iterations ?? Iterations, threads: 1, print: input => $"{input.Name}, {input.Bytes.Length} bytes: {Convert.ToHexString(input.Bytes[..Math.Min(64, input.Bytes.Length)])}...");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"fuzz: {iterations ?? Iterations} inputs, peak resident set grew by at most {worstMb:F0} MB per input");
    }
}

/// <summary>Fuzz classes run alone, one input at a time, so the peak resident set they measure is their own.</summary>
[CollectionDefinition(nameof(FuzzCollection), DisableParallelization = true)]
public sealed class FuzzCollection;
