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
        var task = CommonOptions.Task();
        var data = CommonOptions.Data();
        var seed = CommonOptions.Seed();
        var numTrain = CommonOptions.NumTrain("Train examples sampled as the pool of in-context demonstrations (the same sample a train run uses)");
        var numEval = CommonOptions.NumEval();
        var context = CommonOptions.Context();
        var split = CommonOptions.Split();
        var source = CommonOptions.Source();
        var sourceWindows = CommonOptions.SourceWindows();
        var icl = new Option<int>("--icl") { Description = "In-context demonstrations per test example, drawn from the train sample (0 = zero-shot)", DefaultValueFactory = _ => new EvalRecipeOptions { Task = "", Data = "" }.Demonstrations }
            .AtLeast(0);
        var adapter = CommonOptions.Adapter("A PEFT LoRA adapter folder (ours or PEFT's), merged into the weights before scoring");
        var truncation = CommonOptions.Truncation();
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
                : $"{result.Task} {(k > 0 ? $"{k}-shot in-context" : result.Adapter is not null ? "with the adapter" : "zero-shot")}, seed {result.Seed}: " +
                  $"test {Describe(result.Test)} " +
                  $"on {result.Data.Test} examples ({result.WallSeconds:F1} s)" +
                  (options.Samples is { } written ? $"; answers to {Math.Min(options.NumSamples, result.Data.Test)} of them in {written}" : ""));
            return 0;
        });
        return command;
    }

    /// <summary>"accuracy 0.6120" or "f1 0.4210  exact_match 0.3000".</summary>
    public static string Describe(IReadOnlyDictionary<string, double>? metrics) =>
        metrics is null ? "-" : string.Join("  ", metrics.Select(m => $"{m.Key} {m.Value:F4}"));
}
