using ChainLora.Experiments;

namespace ChainLora.Tests.Experiments;

public class PairedDifferenceTests
{
    /// <summary>Student t quantiles from printed tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), to the digits they give.</summary>
    [Theory]
    [InlineData(0.975, 1, 12.706204736)]
    [InlineData(0.975, 2, 4.302652730)]
    [InlineData(0.975, 3, 3.182446305)]
    [InlineData(0.975, 4, 2.776445105)]
    [InlineData(0.975, 9, 2.262157163)]
    [InlineData(0.975, 29, 2.045229642)]
    [InlineData(0.975, 120, 1.979930405)]
    [InlineData(0.95, 4, 2.131846786)]
    [InlineData(0.995, 4, 4.604094871)]
    [InlineData(0.025, 4, -2.776445105)]
    public void T_quantiles_match_the_printed_table(double p, int degrees, double expected)
    {
        // The table gives 9 decimals: agreement to within its rounding.
        Assert.Equal(expected, StudentT.Quantile(p, degrees), tolerance: 1e-9);
        Assert.Equal(p, StudentT.Cdf(expected, degrees), tolerance: 1e-9);
    }

    [Fact]
    public void The_t_cdf_has_its_closed_forms()
    {
        // One degree of freedom is the Cauchy distribution, two has F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
        foreach (var t in new[] { -3.0, -0.5, 0.0, 0.7, 4.0 })
        {
            Assert.Equal(0.5 + Math.Atan(t) / Math.PI, StudentT.Cdf(t, 1), 12);
            Assert.Equal(0.5 + t / (2 * Math.Sqrt(2 + t * t)), StudentT.Cdf(t, 2), 12);
        }
    }

    [Fact]
    public void The_interval_is_mean_plus_minus_t_sd_over_root_n_and_its_finding_needs_it_to_exclude_zero()
    {
        // Hand computation: mean -0.01, sd sqrt(58e-6 / 4) = 0.0038078866, half width 2.776445105 * sd / sqrt(5).
        var better = new PairedDifference([0, 1, 2, 3, 4], [-0.010, -0.012, -0.008, -0.015, -0.005]);
        Assert.Equal(-0.01, better.Mean, 12);
        Assert.Equal(0.003807886552931954, better.StandardDeviation, 12);
        Assert.Equal(-0.014728115642019837, better.Low, tolerance: 1e-12);
        Assert.Equal(-0.00527188435798016, better.High, tolerance: 1e-12);
        Assert.Equal(PairedVerdict.SecondBetter, better.Verdict);
        Assert.Equal("LoRA better", better.Finding("chain", "LoRA"));

        var unclear = new PairedDifference([0, 1, 2, 3, 4], [0.01, -0.01, 0.005, -0.004, 0.0]);
        Assert.Equal(-0.009433904450585362, unclear.Low, tolerance: 1e-12);
        Assert.Equal(0.009833904450585363, unclear.High, tolerance: 1e-12);
        Assert.Equal("no difference found", unclear.Finding("chain", "LoRA"));
        // Every seed on one side is still no finding when the interval reaches past 0: two seeds, t = 12.7.
        Assert.Equal("no difference found", new PairedDifference([0, 1], [0.001, 0.02]).Finding("chain", "LoRA"));
        Assert.Equal("chain better", new PairedDifference([0, 1, 2], [0.010, 0.011, 0.012]).Finding("chain", "LoRA"));
        Assert.Equal("no difference found (1 seed: no interval)", new PairedDifference([3], [0.5]).Finding("chain", "LoRA"));
        Assert.Equal("no difference found (a run diverged)",
            new PairedDifference([0, 1, 2], [0.1, double.NegativeInfinity, 0.2]).Finding("chain", "LoRA"));
    }

    [Fact]
    public void Runs_are_paired_by_the_seeds_both_have()
    {
        static JobResult Run(long seed, double test, double? dev) => new(new JobSpec { Options = new() { Task = "lm", Data = "", Seed = seed } }, dev, test, "-nll", 0, "");
        var chain = new[] { Run(2, -3.0, -2.9), Run(0, -3.1, null), Run(1, -3.2, -3.0) };
        var lora = new[] { Run(0, -3.3, -3.2), Run(1, -3.25, -3.1), Run(4, -1.0, -1.0) };
        var d = PairedDifference.Of(chain, lora);
        Assert.Equal([0L, 1L], d.Seeds);
        Assert.Equal(0.2, d.Differences[0], 12);
        Assert.Equal(0.05, d.Differences[1], 12);
        var dev = PairedDifference.Of(chain, lora, dev: true);
        Assert.Equal([1L], dev.Seeds);   // seed 0 of the chain has no dev score
    }
}
