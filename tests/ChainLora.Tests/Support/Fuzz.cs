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
    /// on it: it must return or throw <see cref="InvalidDataException"/> (or a type in
    /// <paramref name="alsoAllowed"/>), within <paramref name="seconds"/>.
    /// </summary>
    public static void Reader(byte[] seed, string fileName, Action<string> read, IReadOnlyDictionary<string, byte[]>? companions = null,
        Type[]? alsoAllowed = null, int seconds = 10)
    {
        var root = Directory.CreateTempSubdirectory("fuzz-").FullName;
        var count = 0;
        try
        {
            Mutations(seed).Sample(bytes =>
            {
                var dir = Path.Combine(root, $"{count++}");
                Directory.CreateDirectory(dir);
                foreach (var (name, content) in companions ?? new Dictionary<string, byte[]>()) File.WriteAllBytes(Path.Combine(dir, name), content);
                var path = Path.Combine(dir, fileName);
                File.WriteAllBytes(path, bytes);
                var work = Task.Run(() => read(path));
                try
                {
                    if (!work.Wait(TimeSpan.FromSeconds(seconds)))
                        throw new TimeoutException($"{fileName}: the reader took more than {seconds} s on a {bytes.Length}-byte input");
                }
                catch (AggregateException e) when (e.InnerException is InvalidDataException
                    || (alsoAllowed ?? []).Any(t => t.IsInstanceOfType(e.InnerException)))
                {
                }
                finally
                {
                    Directory.Delete(dir, recursive: true);
                }
            }, iter: Iterations, threads: 1, print: b => $"{b.Length} bytes: {Convert.ToHexString(b[..Math.Min(64, b.Length)])}...");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
