using System.CommandLine;
using ChainLora.Models;
using ChainLora.Recipes;
using ChainLora.Tasks;

namespace ChainLora.Cli.Commands;

static class EvalCommand
{
    public static Command Create(TextWriter output)
    {
        var model = CommonOptions.Model();
        var task = Task();
        var data = Data();
        var seed = CommonOptions.Seed();
        var numTrain = NumTrain("Train examples sampled as the pool of in-context demonstrations (the same sample a train run uses)");
        var numEval = NumEval();
        var context = Context();
        var split = Split();
        var source = Source();
        var sourceWindows = SourceWindows();
        var icl = new Option<int>("--icl") { Description = "In-context demonstrations per test example, drawn from the train sample (0 = zero-shot)", DefaultValueFactory = _ => new EvalRecipeOptions { Task = "", Data = "" }.Demonstrations }
            .AtLeast(0);
        var adapter = Adapter("A PEFT LoRA adapter folder (ours or PEFT's), merged into the weights before scoring");
        var truncation = Truncation();
        var defaults = new EvalRecipeOptions { Task = "", Data = "" };
        var samples = new Option<string?>("--samples")
        {
            Description = "sft: write what the model answers to the first --num-samples test examples into FILE, one JSON line each " +
                          "(prompt, reference, generated, stopped; special tokens dropped from the text), decoded greedily until end of turn",
            HelpName = "FILE",
        }.WritableFile();
        var numSamples = new Option<int>("--num-samples") { Description = "sft: test examples answered into --samples", DefaultValueFactory = _ => defaults.NumSamples }
            .AtLeast(1);
        var maxNew = new Option<int>("--max-new-tokens") { Description = "sft: tokens per answer in --samples at most", DefaultValueFactory = _ => defaults.MaxNewTokens }
            .AtLeast(1);
        var json = CommonOptions.Json();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.BaseDtype();
        var command = new Command("eval",
            "Score a model on a task's test sample, zero-shot or in-context: accuracy for classification and multiple choice, " +
            "F1 and exact match for SQuAD and DROP, NLL per token and perplexity for lm, response NLL and perplexity for sft (--samples: what it answers)")
        {
            model, adapter, task, data, seed, numTrain, numEval, context, split, truncation, source, sourceWindows, icl, samples, numSamples, maxNew, json,
            device, dtype,
        };
        command.SetAction(r =>
        {
            var options = new EvalRecipeOptions
            {
                Model = r.GetValue(model)!,
                BaseDtype = StorageDtype.Parse(r.GetValue(dtype)!),
                Device = CommonOptions.ParseDevice(r.GetValue(device)!),
                Task = r.GetValue(task)!,
                Data = r.GetValue(data)!,
                Seed = r.GetValue(seed),
                NumTrain = r.GetValue(numTrain),
                NumEval = r.GetValue(numEval),
                Context = r.GetValue(context),
                Split = r.GetEnum<TextSplit>(split),
                Source = r.GetValue(source),
                SourceWindows = r.GetValue(sourceWindows),
                Demonstrations = r.GetValue(icl),
                Adapter = r.GetValue(adapter),
                Truncation = r.GetEnum<SftTruncationMode>(truncation),
                Samples = r.GetValue(samples),
                NumSamples = r.GetValue(numSamples),
                MaxNewTokens = r.GetValue(maxNew),
            };
            var result = EvalRecipe.Run(options.Validate() with { Model = CommonOptions.ModelFolder(options.Model) });
            var k = result.Demonstrations;
            output.WriteLine(r.GetValue(json)
                ? ResultFile.ToJson(result)
                : $"{result.Task} {(k == 0 ? "zero-shot" : $"{k}-shot in-context")}, seed {result.Seed}: test {Describe(result.Test)} " +
                  $"on {result.Data.Test} examples ({result.WallSeconds:F1} s)" +
                  (options.Samples is { } written ? $"; answers to {Math.Min(options.NumSamples, result.Data.Test)} of them in {written}" : ""));
            return 0;
        });
        return command;
    }

    /// <summary>"accuracy 0.6120" or "f1 0.4210  exact_match 0.3000".</summary>
    public static string Describe(IReadOnlyDictionary<string, double>? metrics) =>
        metrics is null ? "-" : string.Join("  ", metrics.Select(m => $"{m.Key} {m.Value:F4}"));

    // Options shared with `train`.

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
