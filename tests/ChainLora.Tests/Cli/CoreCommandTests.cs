using System.Text.Json;

namespace ChainLora.Tests.Cli;

public class CoreCommandTests
{
    [Fact]
    public void A_failure_is_one_line_unless_verbose_asks_for_the_trace()
    {
        // A folder without jobs/ fails while the command runs (a missing path is refused earlier, while parsing, with no exception).
        var dir = Directory.CreateTempSubdirectory("chainlora-nojobs-").FullName;
        try
        {
            var (exit, _, error) = CliHarness.Run("experiment", "status", dir);
            Assert.Equal(2, exit);
            Assert.Single(error.Trim().Split('\n'));
            Assert.DoesNotContain("   at ", error);
            (exit, _, error) = CliHarness.Run("experiment", "status", dir, "--verbose");
            Assert.Equal(2, exit);
            Assert.Contains("System.IO.DirectoryNotFoundException", error);
            Assert.Contains("   at ", error);
            Assert.EndsWith($"error: {dir}: no jobs/ folder (write the specs with `chainlora experiment --config FILE --out {dir}`)", error.Trim());
        }
        finally
        {
            Directory.Delete(dir);
        }
    }

    [Fact]
    public void Usage_names_the_command_as_users_type_it_and_an_unknown_command_is_named()
    {
        var (exit, output, _) = CliHarness.Run("--help");
        Assert.Equal(0, exit);
        Assert.Contains("chainlora [command] [options]", output);
        (exit, _, var error) = CliHarness.Run("traain");
        Assert.Equal(2, exit);
        Assert.Contains("'traain'", error);
    }

    [Fact]
    public void Generate_prints_prompt_and_greedy_continuation()
    {
        var model = SharedData.Require("models/stories260K");
        var (exit, output, error) = CliHarness.Run("generate", "--model", model,
            "--prompt", "Once upon a time, there was a little girl", "--max-new-tokens", "12");
        Assert.True(exit == 0, error);
        Assert.StartsWith("Once upon a time, there was a little girl named Lily. She loved to play", output);
    }

    [Fact]
    public void Perplexity_json_is_one_line_with_the_three_fields()
    {
        var model = SharedData.Require("models/stories260K");
        var text = Path.Combine(Path.GetTempPath(), $"ppl-{Guid.NewGuid():N}.txt");
        File.WriteAllText(text, "Once upon a time, there was a little girl named Lily. She loved to play outside.");
        try
        {
            var (exit, output, error) = CliHarness.Run("perplexity", "--model", model, "--text", text, "--json");
            Assert.True(exit == 0, error);
            var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            var json = JsonDocument.Parse(line).RootElement;
            var nll = json.GetProperty("nll_per_token").GetDouble();
            Assert.InRange(nll, 0.1, 4.0);
            Assert.Equal(Math.Exp(nll), json.GetProperty("perplexity").GetDouble(), 1e-9);
            Assert.True(json.GetProperty("tokens").GetInt64() > 10);
        }
        finally
        {
            File.Delete(text);
        }
    }

    [Theory]
    [InlineData("generate", "--model", "x", "--prompt", "hi", "--bogus")]
    [InlineData("generate", "--model", "x", "--prompt", "hi", "--max-new-tokens", "zero")]
    [InlineData("generate", "--model", "x", "--prompt", "hi", "--max-new-tokens", "0")]
    [InlineData("generate", "--prompt", "hi")]
    [InlineData("perplexity", "--model", "x", "--text", "y", "--device", "tpu")]
    [InlineData("frobnicate")]
    public void Bad_usage_exits_2_with_one_line(params string[] args)
    {
        var (exit, _, error) = CliHarness.Run(args);
        Assert.Equal(2, exit);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Missing_model_directory_is_named()
    {
        var (exit, _, error) = CliHarness.Run("generate", "--model", "/nonexistent/model", "--prompt", "hi");
        Assert.Equal(2, exit);
        Assert.Contains("/nonexistent/model", error);
    }

    [Fact]
    public void A_directory_without_a_model_is_named_with_what_is_missing()
    {
        var dir = Directory.CreateTempSubdirectory("empty-model").FullName;
        var (exit, _, error) = CliHarness.Run("perplexity", "--model", dir, "--text", "/etc/hostname");
        Assert.Equal(2, exit);
        Assert.Contains(dir, error);
        Assert.Contains("config.json", error);
    }

    [Theory]
    [InlineData("generate", "--model")]
    [InlineData("perplexity", "--model")]
    [InlineData("eval", "--model")]
    [InlineData("train", "--gradient-checkpointing")]
    [InlineData("bench", "--gradient-checkpointing")]
    [InlineData("export", "--run")]
    public void Help_describes_every_option_and_every_model_command_takes_a_device(string command, string option)
    {
        var (exit, output, _) = CliHarness.Run(command, "--help");
        Assert.Equal(0, exit);
        Assert.Contains(option, output);
        Assert.Contains("--device", output);
    }

    [Fact]
    public void Bench_runs_a_checkpointed_step_on_the_device_it_is_given()
    {
        var (exit, output, error) = CliHarness.Run("bench", "--shape", "tiny260k", "--batch", "1", "--seq", "8", "--steps", "1",
            "--warmup", "0", "--gradient-checkpointing", "--device", "cpu", "--json");
        Assert.True(exit == 0, error);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        Assert.True(json.RootElement.GetProperty("gradient_checkpointing").GetBoolean());
        Assert.Equal("cpu", json.RootElement.GetProperty("device").GetString());
        Assert.True(json.RootElement.GetProperty("median_step_s").GetDouble() > 0);
    }
}
