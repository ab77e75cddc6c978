namespace ChainLora.Tests;

/// <summary>A small grid config on stories260K's lm task (tinyshakespeare): 8 train windows, batch 4, 2 epochs, lr 3e-3.</summary>
static class LmGrid
{
    /// <summary>Writes the config to <paramref name="path"/>; <paramref name="methods"/> and <paramref name="seeds"/> are JSON arrays.</summary>
    public static string Write(string path, string model, string text, string methods, string seeds = "[1]")
    {
        File.WriteAllText(path, $$"""
        {
          "model": "{{model}}", "data_root": "{{Path.GetDirectoryName(text)}}",
          "tasks": [{ "name": "lm", "data": "{{Path.GetFileName(text)}}" }],
          "methods": {{methods}},
          "learning_rates": [3e-3], "seeds": {{seeds}}, "epochs": 2,
          "num_train": 8, "num_dev": 2, "num_eval": 4, "batch_size": 4
        }
        """);
        return path;
    }
}
