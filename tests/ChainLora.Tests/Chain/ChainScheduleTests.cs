using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Training;

namespace ChainLora.Tests.Chain;

public class ChainScheduleTests
{
    static readonly LoraConfig Lora = new();

    static (int Start, int End)[] Spans(ChainSchedule s) => s.Links.Select(l => (l.StartStep, l.EndStep)).ToArray();

    [Fact]
    public void Two_links_over_five_epochs_are_epochs_1_to_3_then_4_to_5()
    {
        var s = ChainSchedule.Create(new ChainConfig { Length = 2 }, Lora, stepsPerEpoch: 10, epochs: 5);
        Assert.Equal([(0, 30), (30, 50)], Spans(s));
    }

    [Fact]
    public void Three_links_over_five_epochs_put_the_longer_links_first()
    {
        var s = ChainSchedule.Create(new ChainConfig { Length = 3 }, Lora, 4, 5);
        Assert.Equal([(0, 8), (8, 16), (16, 20)], Spans(s));
    }

    [Fact]
    public void More_links_than_epochs_split_the_steps()
    {
        var s = ChainSchedule.Create(new ChainConfig { Length = 3 }, Lora, 10, 1);
        Assert.Equal([(0, 4), (4, 7), (7, 10)], Spans(s));
    }

    [Fact]
    public void Knots_at_fractions_and_at_explicit_steps()
    {
        Assert.Equal([(0, 25), (25, 100)], Spans(ChainSchedule.Create(new ChainConfig { Length = 2, KnotFractions = [0.25] }, Lora, 20, 5)));
        Assert.Equal([(0, 7), (7, 9), (9, 100)], Spans(ChainSchedule.Create(new ChainConfig { Length = 3, KnotSteps = [7, 9] }, Lora, 20, 5)));
    }

    [Fact]
    public void Rank_step_down_repeats_the_last_rank_and_alpha_follows_the_policy()
    {
        var keepAlpha = ChainSchedule.Create(new ChainConfig { Length = 3, Ranks = [8, 4] }, Lora, 1, 3);
        Assert.Equal([8, 4, 4], keepAlpha.Links.Select(l => l.Rank));
        Assert.All(keepAlpha.Links, l => Assert.Equal(16, l.Alpha));
        var keepScaling = ChainSchedule.Create(new ChainConfig { Length = 2, Ranks = [8, 4], AlphaPolicy = AlphaPolicy.KeepScaling }, Lora, 1, 2);
        Assert.Equal([16.0, 8.0], keepScaling.Links.Select(l => l.Alpha));
    }

    [Theory]
    [InlineData(0, null, null, "chain length")]
    [InlineData(2, new[] { 8, 4, 2 }, null, "ranks")]
    [InlineData(2, new[] { 0 }, null, "rank")]
    [InlineData(3, null, new[] { 0.5 }, "knot fractions")]
    [InlineData(3, null, new[] { 0.6, 0.4 }, "knot fraction")]
    public void Bad_chains_are_named(int length, int[]? ranks, double[]? fractions, string what)
    {
        var e = Assert.Throws<ArgumentException>(() =>
            ChainSchedule.Create(new ChainConfig { Length = length, Ranks = ranks, KnotFractions = fractions }, Lora, 10, 5));
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void An_empty_link_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => ChainSchedule.Create(new ChainConfig { Length = 4 }, Lora, 1, 3));
        Assert.Contains("chain length 4 (--chain-length): the run takes 3 optimizer steps and each link needs at least one", e.Message);
        e = Assert.Throws<ArgumentException>(() => ChainSchedule.Create(new ChainConfig { Length = 3, KnotSteps = [2, 2] }, Lora, 2, 2));
        Assert.Contains("link 2 would be empty (from step 2 to step 2)", e.Message);
    }

    [Fact]
    public void Uncut_gives_back_the_layout_before_automatic_knots_and_a_fixed_chain_itself()
    {
        var auto = ChainSchedule.Create(new ChainConfig { Length = 3, Auto = new AutoKnots { Window = 2 } }, Lora, 10, 2);
        var cut = auto.CutAt(6, "first").CutAt(12, "second");
        Assert.Equal([(0, 6), (6, 12), (12, 20)], Spans(cut));
        var uncut = cut.Uncut();
        Assert.Equal(Spans(auto), Spans(uncut));
        Assert.Equal([(0, 20)], Spans(uncut));
        Assert.Null(uncut.Links[0].Reason);
        Assert.Equal(auto.Links[0], uncut.Links[0]);
        var plan = ChainSchedule.Create(new ChainConfig { Length = 2 }, Lora, 10, 2);
        Assert.Same(plan, plan.Uncut());
    }

    [Fact]
    public void Lr_decays_linearly_over_the_whole_budget_or_rewarms_per_link()
    {
        var s = ChainSchedule.Create(new ChainConfig { Length = 2 }, Lora, 5, 2);
        var whole = new LrSchedule(1.0, 0, false, s);
        Assert.Equal([1.0, 0.9, 0.5, 0.1], new[] { 0, 1, 5, 9 }.Select(whole.At), new ToleranceComparer(1e-12));
        var rewarm = new LrSchedule(1.0, 0.2, true, s);
        Assert.Equal([1.0, 0.75, 1.0, 0.5], new[] { 0, 2, 5, 8 }.Select(rewarm.At), new ToleranceComparer(1e-12));
    }

    sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(double x) => 0;
    }
}
