using ChainLora.Tasks;

namespace ChainLora.Tests.Tasks;

public class SamplingTests
{
    static readonly List<int> TrainPool = Enumerable.Range(0, 100).ToList();
    static readonly List<int> Validation = Enumerable.Range(1000, 50).ToList();

    /// <summary>
    /// SplitMix64 and the Fisher-Yates order, pinned against an independent Python version:
    ///   M = 2**64 - 1; s = seed; next: s = (s + 0x9E3779B97F4A7C15) &amp; M, then the mix
    ///   z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31 (mod 2**64);
    ///   below(n): draw until x &lt; M - M % n, return x % n; for i = n-1 .. 1: swap(i, below(i + 1)).
    /// </summary>
    [Fact]
    public void Shuffle_is_the_reference_splitmix64_fisher_yates()
    {
        var rng = new Prng(0);
        Assert.Equal(0xe220a8397b1dcdafUL, rng.Next());
        Assert.Equal(0x6e789e6aa1b965f4UL, rng.Next());
        Assert.Equal([6, 3, 2, 9, 8, 1, 4, 7, 0, 5], Sampling.Permutation(10, new Prng(0)));
        Assert.Equal([0, 9, 5, 8, 6, 4, 7, 2, 1, 3], Sampling.Permutation(10, new Prng(42)));
    }

    [Fact]
    public void Same_seed_same_sample_and_another_seed_another()
    {
        var sizes = new SampleSizes(20, 10, 15);
        var a = Sampling.Draw(TrainPool, Validation, sizes, seed: 3);
        var b = Sampling.Draw(TrainPool, Validation, sizes, seed: 3);
        var c = Sampling.Draw(TrainPool, Validation, sizes, seed: 4);
        Assert.Equal(a.Train, b.Train);
        Assert.Equal(a.Dev, b.Dev);
        Assert.Equal(a.Test, b.Test);
        Assert.NotEqual(a.Train, c.Train);
        Assert.NotEqual(a.Test, c.Test);
    }

    [Fact]
    public void Train_and_dev_come_from_the_train_pool_without_overlap_and_test_from_validation()
    {
        var sample = Sampling.Draw(TrainPool, Validation, new SampleSizes(30, 20, 40), seed: 1);
        Assert.Equal((30, 20, 40), (sample.Train.Count, sample.Dev.Count, sample.Test.Count));
        Assert.Empty(sample.Train.Intersect(sample.Dev));
        Assert.All(sample.Train.Concat(sample.Dev), x => Assert.InRange(x, 0, 99));
        Assert.All(sample.Test, x => Assert.InRange(x, 1000, 1049));
        Assert.Equal(40, sample.Test.Distinct().Count());
        // Train then dev are consecutive slices of one shuffle.
        Assert.Equal(Sampling.Shuffle(TrainPool, 1).Take(50), sample.Train.Concat(sample.Dev));
        Assert.False(sample.Report.Carved);
        Assert.False(sample.Report.Short);
    }

    [Fact]
    public void The_test_set_does_not_depend_on_how_many_train_examples_are_drawn()
    {
        var few = Sampling.Draw(TrainPool, Validation, new SampleSizes(5, 0, 30), seed: 9);
        var many = Sampling.Draw(TrainPool, Validation, new SampleSizes(80, 20, 30), seed: 9);
        Assert.Equal(few.Test, many.Test);
        var carvedFew = Sampling.Draw([], Validation, new SampleSizes(5, 0, 30), seed: 9);
        var carvedMany = Sampling.Draw([], Validation, new SampleSizes(15, 5, 30), seed: 9);
        Assert.Equal(carvedFew.Test, carvedMany.Test);
    }

    [Fact]
    public void A_single_labelled_split_is_carved_into_disjoint_test_train_and_dev()
    {
        var sample = Sampling.Draw([], Validation, new SampleSizes(20, 10, 15), seed: 2);
        Assert.True(sample.Report.Carved);
        Assert.Equal((20, 10, 15), (sample.Train.Count, sample.Dev.Count, sample.Test.Count));
        var all = sample.Test.Concat(sample.Train).Concat(sample.Dev).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.Equal(Sampling.Shuffle(Validation, 2).Take(45), all);
    }

    [Fact]
    public void Smaller_pools_give_what_they_hold_and_say_so()
    {
        var sample = Sampling.Draw(TrainPool.Take(10).ToList(), Validation.Take(7).ToList(), new SampleSizes(8, 5, 100), seed: 0);
        Assert.Equal((8, 2, 7), (sample.Train.Count, sample.Dev.Count, sample.Test.Count));
        Assert.True(sample.Report.Short);
        Assert.Equal((10, 7), (sample.Report.TrainPool, sample.Report.ValidationPool));
        var carved = Sampling.Draw([], Validation.Take(12).ToList(), new SampleSizes(8, 5, 10), seed: 0);
        Assert.Equal((2, 0, 10), (carved.Train.Count, carved.Dev.Count, carved.Test.Count));
    }

    [Fact]
    public void Regions_give_train_dev_and_test_each_from_its_own_pool()
    {
        var devPool = Enumerable.Range(500, 30).ToList();
        var sample = Sampling.DrawRegions(TrainPool, devPool, Validation, new SampleSizes(30, 20, 40), seed: 1);
        Assert.Equal(Sampling.Shuffle(TrainPool, 1).Take(30), sample.Train);
        Assert.Equal(Sampling.Shuffle(devPool, 1).Take(20), sample.Dev);
        // The same test as Draw's for the seed, so a study on either split scores the same test windows.
        Assert.Equal(Sampling.Draw(TrainPool, Validation, new SampleSizes(30, 20, 40), seed: 1).Test, sample.Test);
        Assert.Equal((100, 30, 50, false), (sample.Report.TrainPool, sample.Report.DevPool, sample.Report.ValidationPool, sample.Report.Short));
        var short_ = Sampling.DrawRegions(TrainPool, devPool, Validation, new SampleSizes(30, 40, 40), seed: 1);
        Assert.Equal(30, short_.Dev.Count);
        Assert.True(short_.Report.Short);
        var e = Assert.Throws<ArgumentException>(() => Sampling.DrawRegions(TrainPool, [], Validation, new SampleSizes(30, 1, 40), seed: 1));
        Assert.Equal("a region is empty: train 100, dev 0, test 50 examples", e.Message);
    }

    [Fact]
    public void Demonstrations_are_distinct_reproducible_and_vary_by_test_example()
    {
        var first = Sampling.Demonstrations(TrainPool, 4, seed: 5, index: 0);
        Assert.Equal(first, Sampling.Demonstrations(TrainPool, 4, seed: 5, index: 0));
        Assert.Equal(4, first.Distinct().Count());
        Assert.NotEqual(first, Sampling.Demonstrations(TrainPool, 4, seed: 5, index: 1));
        Assert.Throws<ArgumentException>(() => Sampling.Demonstrations(TrainPool.Take(3).ToList(), 4, 5, 0));
    }
}
