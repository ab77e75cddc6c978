// MeZO's sampling protocol (Malladi et al. 2023; COLA paper, Appendix A.1): for seed s, shuffle the
// train pool with s and take num_train examples, then num_dev after them; the test set is the
// validation split shuffled with s, first num_eval. When a task has only one labelled split
// (BoolQ here has only its validation file), it is shuffled once and carved without overlap:
// test first, then train, then dev. Smaller pools give what they hold; the report says so.
using ChainLora.IO;

namespace ChainLora.Tasks;

public sealed record SampleSizes(
    [property: RecordedAs("num_train")] int Train = 1000,
    [property: RecordedAs("num_dev")] int Dev = 500,
    [property: RecordedAs("num_eval")] int Eval = 1000)
{
    public SampleSizes Validate()
    {
        if (Train < 0) throw new ArgumentException($"num_train {Train}: must be >= 0");
        if (Dev < 0) throw new ArgumentException($"num_dev {Dev}: must be >= 0");
        if (Eval < 1) throw new ArgumentException($"num_eval {Eval}: must be at least 1");
        return this;
    }
}

/// <summary>
/// What was drawn from what: pool sizes, the sizes asked for and those actually used. <paramref name="DevPool"/>
/// is set when dev had a pool of its own (<see cref="Sampling.DrawRegions"/>); otherwise dev came from the train pool.
/// </summary>
public sealed record SampleReport(int TrainPool, int ValidationPool, bool Carved, SampleSizes Requested, int Train, int Dev, int Test, int? DevPool = null)
{
    public bool Short => Train < Requested.Train || Dev < Requested.Dev || Test < Requested.Eval;
}

public sealed record TaskSample<T>(IReadOnlyList<T> Train, IReadOnlyList<T> Dev, IReadOnlyList<T> Test, SampleReport Report);

public static class Sampling
{
    /// <summary>
    /// Draws train, dev and test for <paramref name="seed"/>. When exactly one of the pools is
    /// empty, the other is carved into all three.
    /// </summary>
    public static TaskSample<T> Draw<T>(IReadOnlyList<T> trainPool, IReadOnlyList<T> validation, SampleSizes sizes, long seed)
    {
        sizes.Validate();
        if (trainPool.Count == 0 && validation.Count == 0) throw new ArgumentException("no examples to sample from");
        if (trainPool.Count == 0 || validation.Count == 0)
        {
            var pool = Shuffle(trainPool.Count > 0 ? trainPool : validation, seed);
            var test = pool.Take(sizes.Eval).ToList();
            var train = pool.Skip(test.Count).Take(sizes.Train).ToList();
            var dev = pool.Skip(test.Count + train.Count).Take(sizes.Dev).ToList();
            return new(train, dev, test, new SampleReport(trainPool.Count, validation.Count, true, sizes, train.Count, dev.Count, test.Count));
        }
        var shuffled = Shuffle(trainPool, seed);
        var trainPart = shuffled.Take(sizes.Train).ToList();
        var devPart = shuffled.Skip(trainPart.Count).Take(sizes.Dev).ToList();
        var testPart = Shuffle(validation, seed).Take(sizes.Eval).ToList();
        return new(trainPart, devPart, testPart,
            new SampleReport(trainPool.Count, validation.Count, false, sizes, trainPart.Count, devPart.Count, testPart.Count));
    }

    /// <summary>
    /// Train, dev and test each from a pool of its own (the regions of a contiguous text split):
    /// each pool shuffled with <paramref name="seed"/>, its first N taken. Nothing is carved across pools.
    /// </summary>
    public static TaskSample<T> DrawRegions<T>(IReadOnlyList<T> trainPool, IReadOnlyList<T> devPool, IReadOnlyList<T> testPool, SampleSizes sizes, long seed)
    {
        sizes.Validate();
        if (trainPool.Count == 0 || testPool.Count == 0 || (devPool.Count == 0 && sizes.Dev > 0))
            throw new ArgumentException($"a region is empty: train {trainPool.Count}, dev {devPool.Count}, test {testPool.Count} examples");
        var train = Shuffle(trainPool, seed).Take(sizes.Train).ToList();
        var dev = Shuffle(devPool, seed).Take(sizes.Dev).ToList();
        var test = Shuffle(testPool, seed).Take(sizes.Eval).ToList();
        return new(train, dev, test, new SampleReport(trainPool.Count, testPool.Count, false, sizes, train.Count, dev.Count, test.Count, devPool.Count));
    }

    /// <summary>A copy of <paramref name="items"/> in a seeded Fisher-Yates order (same on every platform).</summary>
    public static List<T> Shuffle<T>(IReadOnlyList<T> items, long seed) =>
        Permutation(items.Count, new Prng((ulong)seed)).Select(i => items[i]).ToList();

    public static int[] Permutation(int n, Prng rng)
    {
        var order = Enumerable.Range(0, n).ToArray();
        for (var i = n - 1; i > 0; i--)
        {
            var j = (int)rng.NextBelow((ulong)i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>
    /// <paramref name="k"/> distinct demonstrations from <paramref name="pool"/> for the test example
    /// at <paramref name="index"/>: a fresh draw per test example, reproducible from the seed.
    /// </summary>
    public static IReadOnlyList<T> Demonstrations<T>(IReadOnlyList<T> pool, int k, long seed, int index)
    {
        if (k > pool.Count) throw new ArgumentException($"{k} demonstrations asked for, but the train sample holds {pool.Count}");
        return Permutation(pool.Count, Prng.Derive(seed, 1, index)).Take(k).Select(i => pool[i]).ToList();
    }
}

/// <summary>SplitMix64 (Steele, Lea and Flood 2014): small, fast and identical on every platform.</summary>
public sealed class Prng(ulong seed)
{
    ulong state = seed;

    public ulong Next() => Mix(state += 0x9E3779B97F4A7C15);

    /// <summary>Uniform in [0, n), without modulo bias.</summary>
    public ulong NextBelow(ulong n)
    {
        if (n == 0) throw new ArgumentOutOfRangeException(nameof(n));
        var limit = ulong.MaxValue - ulong.MaxValue % n;
        ulong x;
        do x = Next(); while (x >= limit);
        return x % n;
    }

    /// <summary>An independent stream for (seed, purpose, index...), e.g. one per epoch.</summary>
    public static Prng Derive(long seed, params long[] streams)
    {
        var h = Mix((ulong)seed);
        foreach (var s in streams) h = Mix(h ^ Mix((ulong)s + 0x632BE59BD9B4E019));
        return new Prng(h);
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
