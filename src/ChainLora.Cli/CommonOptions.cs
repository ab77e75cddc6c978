using System.CommandLine;
using System.Globalization;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Recipes;
using ChainLora.Tasks;
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
        command.SetAction((result, stop) => System.Threading.Tasks.Task.FromResult(action(result, stop)));

    public static Option<string> Device() => new Option<string>("--device")
    {
        Description = "Where to compute: cpu or cuda[:N] (cuda needs a CUDA build of TorchSharp)",
        DefaultValueFactory = _ => "cpu",
    }.AcceptOnlyFromAmongOrCuda();

    public static Option<string> BaseDtype() => new Option<string>("--base-dtype")
    {
        Description = "Storage dtype of the frozen matrices and embeddings: fp32 or bf16 (the activations: see --activations)",
        DefaultValueFactory = _ => StorageDtype.Names[0],
    }.OneOf([.. StorageDtype.Names]);

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
        }.OneOf([.. EnumNames.Accepted<T>()]);

    public static T GetEnum<T>(this ParseResult result, Option<string> option) where T : struct, Enum =>
        EnumNames.Parse<T>(result.GetValue(option)!, option.Name);

    static Option<string> AcceptOnlyFromAmongOrCuda(this Option<string> option)
    {
        return option.Check(v => v == "cpu" || v == "cuda" || System.Text.RegularExpressions.Regex.IsMatch(v, "^cuda:[0-9]+$")
            ? null : $"--device '{v}': expected cpu, cuda or cuda:N");
    }

    /// <summary>
    /// Accepts only <paramref name="values"/> (also offered as completions). Anything else is one line
    /// naming the option, the value and the choices; System.CommandLine's own AcceptOnlyFromAmong
    /// lists them one per line without naming the option.
    /// </summary>
    public static Option<string> OneOf(this Option<string> option, params string[] values)
    {
        option.CompletionSources.Add(values);
        return option.Check(v => values.Contains(v, StringComparer.Ordinal) ? null : $"{option.Name} '{v}': expected one of {string.Join(", ", values)}");
    }

    /// <summary>Adds a validator: a value for which <paramref name="ok"/> is false is refused as "OPTION VALUE: must be RULE".</summary>
    public static Option<T> Must<T>(this Option<T> option, Func<T, bool> ok, string rule) =>
        option.Check(v => ok(v) ? null : $"{option.Name} {Show(v)}: must be {rule}");

    /// <summary>Adds a validator that the integer option is at least <paramref name="min"/>.</summary>
    public static Option<int> AtLeast(this Option<int> option, int min) => option.Must(v => v >= min, $"at least {min}");

    /// <summary>As <see cref="AtLeast(Option{int}, int)"/>, for an option that may be left out.</summary>
    public static Option<int?> AtLeast(this Option<int?> option, int min) => option.Must(v => v is null || v >= min, $"at least {min}");

    /// <summary>A finite number above 0 (NaN and the infinities parse as doubles, so they are refused here by name).</summary>
    public static Option<double> Positive(this Option<double> option) => option.Must(v => v > 0 && double.IsFinite(v), "a positive number");

    /// <summary>A finite number of at least 0.</summary>
    public static Option<double> NotNegative(this Option<double> option) => option.Must(v => v >= 0 && double.IsFinite(v), "a number >= 0");

    /// <summary>A fraction in [0, 1).</summary>
    public static Option<double> Fraction(this Option<double> option) => option.Must(v => v is >= 0 and < 1, "in [0, 1)");

    static string Show<T>(T value) => value switch
    {
        null => "(none)",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>A folder the command writes into, created when missing (<see cref="PathChecks.WritableFolder"/>).</summary>
    public static Option<T> WritableFolder<T>(this Option<T> option) => option.CheckPath(PathChecks.WritableFolder);

    /// <summary>A file the command writes (<see cref="PathChecks.WritableFile"/>).</summary>
    public static Option<T> WritableFile<T>(this Option<T> option) => option.CheckPath(PathChecks.WritableFile);

    /// <summary>A folder that must exist.</summary>
    public static Option<T> ExistingFolder<T>(this Option<T> option) => option.CheckPath(PathChecks.ExistingFolder);

    /// <summary>A file that must exist.</summary>
    public static Option<T> ExistingFile<T>(this Option<T> option) => option.CheckPath(PathChecks.ExistingFile);

    /// <summary>A file or folder that must exist (a task's data: a folder, or lm's text file).</summary>
    public static Option<T> ExistingPath<T>(this Option<T> option) => option.CheckPath(PathChecks.Existing);

    public static Argument<T> ExistingFolder<T>(this Argument<T> argument) => argument.CheckPath(PathChecks.ExistingFolder);

    public static Argument<T> ExistingFile<T>(this Argument<T> argument) => argument.CheckPath(PathChecks.ExistingFile);

    static Option<T> CheckPath<T>(this Option<T> option, Func<string, string?> problem) =>
        option.Check(v => PathOf(v) is { } path && problem(path) is { } why ? $"{option.Name} {path}: {why}" : null);

    static Argument<T> CheckPath<T>(this Argument<T> argument, Func<string, string?> problem)
    {
        argument.Validators.Add(r =>
        {
            T value;
            try { value = r.GetValueOrDefault<T>(); }
            catch (InvalidOperationException) { return; }
            if (PathOf(value) is { } path && problem(path) is { } why) r.AddError($"{argument.Name.ToUpperInvariant()} {path}: {why}");
        });
        return argument;
    }

    /// <summary>The path as the user typed it.</summary>
    static string? PathOf<T>(T value) => value switch
    {
        string s => s,
        FileSystemInfo f => f.ToString(),
        _ => null,
    };

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

    // Options shared by train and eval (and chat, perplexity).

    public static Option<string> Task() => new Option<string>("--task")
    {
        Description = "Task: " + string.Join(", ", TaskRegistry.Names) + " (case-insensitive)",
        Required = true,
    }.Check(v => TaskRegistry.All.Any(t => t.Name.Equals(v.Trim(), StringComparison.OrdinalIgnoreCase))
        ? null : $"--task '{v}': expected one of {string.Join(", ", TaskRegistry.Names)}");

    public static Option<string?> Adapter(string description) => new Option<string?>("--adapter") { Description = description }.ExistingFolder();

    public static Option<string> Data() => new Option<string>("--data")
    {
        Description = "The task's data folder (train / dev / val / test files as .tsv, .jsonl, .json or .parquet); " +
                      "for lm a text file (split 90/10, or 80/10/10 with --split contiguous) or a folder with train.txt and optionally val.txt",
        Required = true,
    }.ExistingPath();

    public static Option<int> NumTrain(string description) =>
        new Option<int>("--num-train") { Description = description, DefaultValueFactory = _ => new SampleSizes().Train }.AtLeast(0);

    public static Option<int?> Context() => new Option<int?>("--context")
    {
        Description = "lm: tokens per window, BOS included; sft: the most tokens an example keeps, cut from its end (default: the model's maximum positions)",
    }.AtLeast(2);

    public static Option<string> Truncation() => CommonOptions.Choice("--truncation",
        "sft: an example longer than --context tokens is cut from its end (cut), left out (drop) or refused naming its file and line (error)",
        SftTruncationMode.Cut);

    public static Option<string?> Source() => new Option<string?>("--source")
    {
        Description = "A text of the model's own domain (stories260K: TinyStories) scored as \"source\" after training: how much of it was forgotten",
        HelpName = "FILE",
    }.ExistingFile();

    public static Option<int> SourceWindows() => new Option<int>("--source-windows")
    {
        Description = "Windows of --source scored (a fixed sample, the same for every seed)", DefaultValueFactory = _ => TrainRecipeOptions.DefaultSourceWindows,
    }.AtLeast(1);

    public static Option<string> Split() => CommonOptions.Choice("--split",
        "lm: where dev comes from (shuffled: drawn with train from the first 90% of the text, the first study's split; " +
        "contiguous: train, dev and test are the text's first 80%, next 10% and last 10%)", TextSplit.Shuffled);

    public static Option<int> NumEval() => new Option<int>("--num-eval")
    {
        Description = "Test examples: the validation split shuffled with the seed, first N (lm: windows)",
        DefaultValueFactory = _ => new SampleSizes().Eval,
    }.AtLeast(1);
}
