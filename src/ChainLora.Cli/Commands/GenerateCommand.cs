using System.CommandLine;
using ChainLora.Evaluation;
using ChainLora.Loading;
using ChainLora.Models;

namespace ChainLora.Cli.Commands;

static class GenerateCommand
{
    public static Command Create(TextWriter output)
    {
        var model = CommonOptions.Model();
        var prompt = new Option<string>("--prompt") { Description = "Text to continue", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate", DefaultValueFactory = _ => 64 }.AtLeast(1);
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy; above 0 samples from softmax(logits / T)", DefaultValueFactory = _ => 0 }
            .NotNegative();
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.BaseDtype();
        var command = new Command("generate", "Continue a prompt; prints the prompt followed by the continuation")
        {
            model, prompt, maxNew, temperature, seed, device, dtype,
        };
        command.SetStoppableAction((r, stop) =>
        {
            var options = new GenerationOptions(r.GetValue(maxNew), r.GetValue(temperature), r.GetValue(seed)).Validate();
            using var loaded = PretrainedModel.Load(CommonOptions.ModelFolder(r.GetValue(model)!, stop),
                StorageDtype.Parse(r.GetValue(dtype)!), CommonOptions.ParseDevice(r.GetValue(device)!));
            var text = r.GetValue(prompt)!;
            var tok = loaded.Tokenizer;
            var ids = tok.Encode(text, addBos: true);
            var room = loaded.Model.MaxPositions - ids.Count;
            if (room < 1) throw new ArgumentException($"--prompt has {ids.Count} tokens, the model's context is {loaded.Model.MaxPositions}");
            options = options with { MaxNewTokens = Math.Min(options.MaxNewTokens, room), StopIds = new HashSet<int> { tok.EosId }, Stop = stop };
            var produced = Generation.Generate(loaded.Model, [ids], options, tok.PadId)[0];
            output.WriteLine(text + tok.Decode([.. ids, .. produced])[tok.Decode(ids).Length..]);
            return 0;
        });
        return command;
    }
}
