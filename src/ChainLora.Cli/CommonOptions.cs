using System.CommandLine;
using static TorchSharp.torch;

namespace ChainLora.Cli;

/// <summary>Options shared by several commands, with their parsing.</summary>
static class CommonOptions
{
    public static Option<DirectoryInfo> Model() => new("--model")
    {
        Description = "Model directory: Hugging Face (config.json + *.safetensors + tokenizer) or llama2.c (.bin + tokenizer .model)",
        Required = true,
    };

    public static Option<string> Device() => new Option<string>("--device")
    {
        Description = "Where to compute: cpu or cuda[:N] (cuda needs a CUDA build of TorchSharp)",
        DefaultValueFactory = _ => "cpu",
    }.AcceptOnlyFromAmongOrCuda();

    public static Option<string> BaseDtype() => new Option<string>("--base-dtype")
    {
        Description = "Storage dtype of the frozen matrices and embeddings: fp32 or bf16 (norms and the residual stream stay fp32)",
        DefaultValueFactory = _ => "fp32",
    }.AcceptOnlyFromAmong("fp32", "bf16");

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON line instead of text" };

    public static Option<long> Seed() => new("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };

    public static Device ParseDevice(string text) => new(text);

    public static ScalarType ParseDtype(string text) => text == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;

    static Option<string> AcceptOnlyFromAmongOrCuda(this Option<string> option)
    {
        option.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (value != "cpu" && value != "cuda" && !System.Text.RegularExpressions.Regex.IsMatch(value, "^cuda:[0-9]+$"))
                r.AddError($"--device '{value}': expected cpu, cuda or cuda:N");
        });
        return option;
    }

    /// <summary>Adds a validator that the integer option is at least <paramref name="min"/>.</summary>
    public static Option<int> AtLeast(this Option<int> option, int min)
    {
        option.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<int>();
            if (value < min) r.AddError($"{option.Name} {value}: must be at least {min}");
        });
        return option;
    }
}
