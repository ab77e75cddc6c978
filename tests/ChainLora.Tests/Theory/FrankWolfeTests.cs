using System.Text.Json.Nodes;
using ChainLora.Theory;

namespace ChainLora.Tests.Theory;

/// <summary>Algorithm 2 and Theorem 4.1 on problems where M, beta, D and the oracle's error are computed.</summary>
public class FrankWolfeTests
{
    [Theory]
    [InlineData(FrankWolfeProblem.Completion, 10)]
    [InlineData(FrankWolfeProblem.Completion, 100)]
    [InlineData(FrankWolfeProblem.Completion, 400)]
    [InlineData(FrankWolfeProblem.Robust, 10)]
    [InlineData(FrankWolfeProblem.Robust, 100)]
    [InlineData(FrankWolfeProblem.Robust, 400)]
    public void The_average_gap_stays_under_the_theorem_bound(FrankWolfeProblem problem, int iterations)
    {
        var r = FrankWolfe.Run(new FrankWolfeOptions { Problem = problem, Iterations = iterations, Seed = 3 });
        Assert.True(r.BoundHolds, $"average gap {r.AverageGap} > bound {r.Bound}");
        Assert.Equal(r.Steps.Average(s => s.Gap), r.AverageGap, 9);
        Assert.Equal(2 * Math.Sqrt(r.M * r.Beta) * r.D / Math.Sqrt(iterations) + r.Epsilon, r.Bound, 9);
        Assert.Equal(Math.Sqrt(r.M) / (r.D * Math.Sqrt(r.Beta * iterations)), r.Eta, 12);
        Assert.All(r.Steps, s => Assert.InRange(s.Loss, 0, r.M));   // M bounds the loss on K
        Assert.True(r.FinalLoss < r.InitialLoss / (iterations >= 100 ? 20 : 5), $"loss {r.InitialLoss} -> {r.FinalLoss}");
    }

    [Fact]
    public void The_rank_grows_by_at_most_one_per_step()
    {
        var r = FrankWolfe.Run(new FrankWolfeOptions { Iterations = 60, Seed = 1 });
        Assert.Equal(0, r.Steps[0].Rank);
        for (var t = 1; t < r.Steps.Count; t++) Assert.InRange(r.Steps[t].Rank, 0, r.Steps[t - 1].Rank + 1);
        Assert.Equal(10, r.Steps[10].Rank);                          // fresh directions early on: exactly one more each step
        Assert.True(r.FinalRank <= Math.Min(60, 30));
    }

    [Fact]
    public void The_gap_bounds_the_suboptimality_of_a_convex_problem()
    {
        // For convex L, L(W_t) - L* <= g_t; L* <= the least loss the run ever reached.
        var r = FrankWolfe.Run(new FrankWolfeOptions { Iterations = 300, Seed = 2 });
        var best = Math.Min(r.FinalLoss, r.Steps.Min(s => s.Loss));
        Assert.All(r.Steps, s => Assert.True(s.Loss - best <= s.Gap + 1e-9, $"t {s.T}: L - L* >= {s.Loss - best} > gap {s.Gap}"));
    }

    [Fact]
    public void An_approximate_oracle_has_its_error_measured_and_added_to_the_bound()
    {
        var exact = FrankWolfe.Run(new FrankWolfeOptions { Iterations = 100, Seed = 4 });
        var approximate = FrankWolfe.Run(new FrankWolfeOptions { Iterations = 100, Seed = 4, PowerIterations = 1 });
        Assert.True(exact.Epsilon < 1e-8, $"exact oracle error {exact.Epsilon}");
        Assert.True(approximate.Epsilon > 1e-3, "one power iteration is not the exact top pair");
        Assert.Equal(exact.Bound - exact.Epsilon + approximate.Epsilon, approximate.Bound, 6);
        Assert.True(approximate.BoundHolds);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(100)]
    [InlineData(1000)]
    public void A_step_that_jumps_to_the_vertex_violates_the_bound(int iterations)
    {
        // eta = 1 (the theorem's step times 1000, capped) replaces W by the oracle's vertex every
        // iteration: the gap never shrinks and its average ends above the bound at every horizon.
        // Five times the theorem's step still satisfies it: the worst-case M leaves slack.
        var tooLarge = FrankWolfe.Run(new FrankWolfeOptions { Iterations = iterations, StepScale = 1000 });
        Assert.True(tooLarge.EtaCapped);
        Assert.Equal(1, tooLarge.Eta);
        Assert.False(tooLarge.BoundHolds, $"average gap {tooLarge.AverageGap} <= bound {tooLarge.Bound}");
        Assert.True(FrankWolfe.Run(new FrankWolfeOptions { Iterations = iterations, StepScale = 5 }).BoundHolds);
    }

    [Fact]
    public void Bad_options_name_the_value()
    {
        var e = Assert.Throws<ArgumentException>(() => FrankWolfe.Run(new FrankWolfeOptions { Iterations = 0 }));
        Assert.Contains("iterations 0", e.Message);
        e = Assert.Throws<ArgumentException>(() => FrankWolfe.Run(new FrankWolfeOptions { StepScale = double.NaN }));
        Assert.Contains("step scale", e.Message);
    }

    [Fact]
    public void The_command_prints_one_json_line_and_writes_a_plot()
    {
        var png = Path.Combine(Path.GetTempPath(), $"fw-{Guid.NewGuid():N}.png");
        try
        {
            var (exit, output, error) = CliHarness.Run("frank-wolfe", "--iterations", "50", "--seed", "7", "--problem", "robust", "--json", "--plot", png);
            Assert.True(exit == 0, error);
            var json = JsonNode.Parse(output.Trim())!;
            foreach (var field in new[] { "average_gap", "bound", "iterations", "final_rank", "epsilon" }) Assert.NotNull(json[field]);
            Assert.Equal(50, json["iterations"]!.GetValue<int>());
            Assert.True(json["bound_holds"]!.GetValue<bool>());
            var bytes = File.ReadAllBytes(png);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
            Assert.True(bytes.Length > 10_000, "a plot, not an empty image");
            (exit, _, error) = CliHarness.Run("frank-wolfe", "--iterations", "-3");
            Assert.Equal(2, exit);
            Assert.Contains("iterations -3", error);
        }
        finally
        {
            File.Delete(png);
        }
    }
}
