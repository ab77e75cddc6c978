using System.CommandLine;
using ChainLora.Evaluation;
using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Models;

namespace ChainLora.Cli.Commands;

static class PerplexityCommand
{
    public static Command Create(TextWriter output)
    {
        var model = CommonOptions.Model();
        var text = new Option<FileInfo>("--text") { Description = "UTF-8 text file to score", Required = true }.ExistingFile();
        var batch = new Option<int>("--batch-size") { Description = "Context windows per forward pass", DefaultValueFactory = _ => 8 }.AtLeast(1);
        var context = CommonOptions.Context();
        var json = CommonOptions.Json();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.BaseDtype();
        var command = new Command("perplexity",
            "Mean NLL per token of a text file (windows of BOS + context-1 tokens over the whole file tokenized once)")
        {
            model, text, batch, context, json, device, dtype,
        };
        command.SetStoppableAction((r, stop) =>
        {
            var file = r.GetValue(text)!;
            using var loaded = PretrainedModel.Load(CommonOptions.ModelFolder(r.GetValue(model)!, stop),
                StorageDtype.Parse(r.GetValue(dtype)!), CommonOptions.ParseDevice(r.GetValue(device)!));
            var result = Perplexity.OfText(loaded.Model, loaded.Tokenizer, File.ReadAllText(file.FullName), r.GetValue(batch),
                r.GetValue(context), stop);
            output.WriteLine(r.GetValue(json)
                ? JsonLines.Serialize(new { nll_per_token = result.NllPerToken, perplexity = result.Perplexity, tokens = result.Tokens })
                : $"{result.Tokens} tokens  NLL/token {result.NllPerToken:F4}  perplexity {result.Perplexity:F3}");
            return 0;
        });
        return command;
    }
}
