using System.CommandLine;
using ChainLora.IO;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Cli;

/// <summary>Options shared by several commands, with their parsing.</summary>
static class CommonOptions
{
    public static Option<string> Model() => new("--model")
    {
        Description = "Model: a Hugging Face folder (config.json + safetensors or pytorch_model.bin + tokenizer), a llama2.c " +
                      "folder (.bin + tokenizer .model), or a Hub id org/name[@revision] from the Hugging Face cache " +
                      "(downloaded into it when missing, unless HF_HUB_OFFLINE is set)",
        Required = true,
    };

    /// <summary>
    /// The folder a --model value names, a Hub id resolved (and downloaded, with progress bars) first;
    /// <paramref name="stop"/> stops the download.
    /// </summary>
    public static string ModelFolder(string value, CancellationToken stop = default) =>
        Path.GetFullPath(DownloadProgress.ResolveModel(value, cancel: stop));

    /// <summary>
    /// Sets <paramref name="action"/> as <paramref name="command"/>'s action and hands it the stop
    /// token that the first Ctrl+C or SIGTERM cancels. CliApp catches those signals only for
    /// commands set this way; any other command ends at once on a signal, as a process does by default.
    /// </summary>
    public static void SetStoppableAction(this Command command, Func<ParseResult, CancellationToken, int> action) =>
        command.SetAction((result, stop) => Task.FromResult(action(result, stop)));

    public static Option<string> Device() => new Option<string>("--device")
    {
        Description = "Where to compute: cpu or cuda[:N] (cuda needs a CUDA build of TorchSharp)",
        DefaultValueFactory = _ => "cpu",
    }.AcceptOnlyFromAmongOrCuda();

    public static Option<string> BaseDtype() => new Option<string>("--base-dtype")
    {
        Description = "Storage dtype of the frozen matrices and embeddings: fp32 or bf16 (the activations: see --activations)",
        DefaultValueFactory = _ => StorageDtype.Names[0],
    }.AcceptOnlyFromAmong([.. StorageDtype.Names]);

    public static Option<bool> GradientCheckpointing() => new("--gradient-checkpointing")
    {
        Description = "Keep only each decoder layer's input and recompute the layer in backward: less activation memory, about a third more compute",
    };

    public static Option<string> Activations() => Choice("--activations",
        "dtype of the residual stream and the activations between matmuls (auto: fp32 on the CPU, the --base-dtype on a GPU, as transformers keeps them)",
        ActivationPrecision.Auto);

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON line instead of text" };

    public static Option<long> Seed() => new("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };

    public static Device ParseDevice(string text) => new(text);

    /// <summary>
    /// An option naming a value of <typeparamref name="T"/> by its <see cref="EnumNames"/> name, with
    /// <paramref name="defaultValue"/> (the library's default) shown in --help; read it with <see cref="GetEnum"/>.
    /// </summary>
    public static Option<string> Choice<T>(string name, string description, T defaultValue) where T : struct, Enum =>
        new Option<string>(name)
        {
            Description = $"{description}: {EnumNames.Choices<T>()}",
            DefaultValueFactory = _ => EnumNames.Name(defaultValue),
        }.AcceptOnlyFromAmong([.. EnumNames.Accepted<T>()]);

    public static T GetEnum<T>(this ParseResult result, Option<string> option) where T : struct, Enum =>
        EnumNames.Parse<T>(result.GetValue(option)!, option.Name);

    static Option<string> AcceptOnlyFromAmongOrCuda(this Option<string> option)
    {
        return option.Check(v => v == "cpu" || v == "cuda" || System.Text.RegularExpressions.Regex.IsMatch(v, "^cuda:[0-9]+$")
            ? null : $"--device '{v}': expected cpu, cuda or cuda:N");
    }

    /// <summary>Adds a validator that the integer option is at least <paramref name="min"/>.</summary>
    public static Option<int> AtLeast(this Option<int> option, int min) =>
        option.Check(v => v >= min ? null : $"{option.Name} {v}: must be at least {min}");

    /// <summary>
    /// Adds <paramref name="problem"/> (null = fine) as a validator; a value that did not even
    /// convert is left to the parser's own error.
    /// </summary>
    public static Option<T> Check<T>(this Option<T> option, Func<T, string?> problem)
    {
        option.Validators.Add(r =>
        {
            T value;
            try { value = r.GetValueOrDefault<T>(); }
            catch (InvalidOperationException) { return; }
            if (problem(value) is { } message) r.AddError(message);
        });
        return option;
    }
}
