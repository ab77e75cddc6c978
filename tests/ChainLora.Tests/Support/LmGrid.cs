namespace ChainLora.Tests;

/// <summary>A small grid config on stories260K's lm task (tinyshakespeare): 8 train windows, batch 4, 2 epochs, lr 3e-3.</summary>
static class LmGrid
{
    /// <summary>
    /// Writes the config to <paramref name="path"/>; <paramref name="methods"/> and <paramref name="seeds"/> are JSON arrays,
    /// <paramref name="extra"/> more fields (", \"name\": value").
    /// </summary>
    public static string Write(string path, string model, string text, string methods, string seeds = "[1]", string extra = "")
    {
        File.WriteAllText(path, $$"""
        {
          "model": "{{model}}", "data_root": "{{Path.GetDirectoryName(text)}}",
          "tasks": [{ "name": "lm", "data": "{{Path.GetFileName(text)}}" }],
          "methods": {{methods}},
          "learning_rates": [3e-3], "seeds": {{seeds}}, "epochs": 2,
          "num_train": 8, "num_dev": 2, "num_eval": 4, "batch_size": 4{{extra}}
        }
        """);
        return path;
    }

    /// <summary>Zero-shot and a two-link COLA (ranks 8, 4): the two-cell grid the runner and recipe tests plan.</summary>
    public const string ZeroShotAndCola =
        """[{ "name": "zero-shot", "kind": "zero-shot" }, { "name": "COLA M=2", "kind": "cola", "chain_length": 2, "ranks": [8, 4] }]""";

    /// <summary>
    /// <see cref="ZeroShotAndCola"/> on stories260K written to <paramref name="config"/> and planned
    /// into <paramref name="grid"/> by `experiment --dry-run`; returns what it printed.
    /// </summary>
    public static string PlanTwoCells(string config, string grid)
    {
        Write(config, SharedData.Require("models/stories260K"), SharedData.Require("corpus/tinyshakespeare.txt"), ZeroShotAndCola);
        var (exit, output, error) = CliHarness.Run("experiment", "--config", config, "--out", grid, "--dry-run");
        Assert.True(exit == 0, error);
        return output;
    }
}
