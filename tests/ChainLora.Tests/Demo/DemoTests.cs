using System.Text.Json;
using ChainLora.Demo;

namespace ChainLora.Tests.Demo;

public class DemoTests
{
    [Fact]
    public void Demo_json_reports_every_method_with_its_measurements()
    {
        var (exit, output, error) = CliHarness.Run("demo", "--steps", "12", "--json");
        Assert.True(exit == 0, error);
        var runs = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(["LoRA r=8", "COLA M=2", "COLA M=3", "COLA (8,4)", "LoRA r=24"], runs.Select(r => r.GetProperty("method").GetString()));
        Assert.Equal([1, 2, 3, 2, 1], runs.Select(r => r.GetProperty("chain_length").GetInt32()));
        Assert.Equal([8, 4], runs[3].GetProperty("ranks").EnumerateArray().Select(x => x.GetInt32()));
        foreach (var r in runs)
        {
            Assert.InRange(r.GetProperty("relative_update_error").GetDouble(), 0.1, 2.0); // twelve steps barely start
            Assert.True(r.GetProperty("heldout_loss").GetDouble() > 0);
            Assert.True(r.GetProperty("seconds").GetDouble() > 0);
            Assert.True(r.GetProperty("training_flops").GetDouble() > 0);
        }
        Assert.Equal(3 * runs[0].GetProperty("trainable_parameters").GetInt64(), runs[4].GetProperty("trainable_parameters").GetInt64());
        // dW* has rank 24 with a spread spectrum: one rank-8 update leaves part of it, a rank-24 one none.
        var best8 = runs[0].GetProperty("best_single_link_error").GetDouble();
        Assert.InRange(best8, 0.3, 0.95);
        Assert.Equal(best8, runs[2].GetProperty("best_single_link_error").GetDouble());
        Assert.InRange(runs[4].GetProperty("best_single_link_error").GetDouble(), 0, 1e-3);
    }

    [Fact]
    public void Demo_is_deterministic_for_a_seed()
    {
        var options = new DemoOptions { Steps = 6, TrainSequences = 64, HeldoutSequences = 16 };
        var methods = ResidualLearningDemo.DefaultMethods(options).Take(2).ToList();
        var a = ResidualLearningDemo.Run(options, methods);
        var b = ResidualLearningDemo.Run(options, methods);
        Assert.Equal(a.Select(r => r.HeldoutLoss), b.Select(r => r.HeldoutLoss));
        Assert.Equal(a.Select(r => r.RelativeUpdateError), b.Select(r => r.RelativeUpdateError));
    }
}
