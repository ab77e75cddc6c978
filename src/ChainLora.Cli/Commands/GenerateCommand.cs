using System.CommandLine;
using ChainLora.Models;
using ChainLora.Recipes;

namespace ChainLora.Cli.Commands;

static class GenerateCommand
{
    public static Command Create(TextWriter output)
    {
        var defaults = new GenerateRecipeOptions { Prompt = "" };
        var model = CommonOptions.Model();
        var prompt = new Option<string>("--prompt") { Description = "Text to continue", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate", DefaultValueFactory = _ => defaults.MaxNewTokens }.AtLeast(1);
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy; above 0 samples from softmax(logits / T)", DefaultValueFactory = _ => defaults.Temperature }
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
            var options = new GenerateRecipeOptions
            {
                Model = r.GetValue(model)!,
                BaseDtype = StorageDtype.Parse(r.GetValue(dtype)!),
                Device = CommonOptions.ParseDevice(r.GetValue(device)!),
                Prompt = r.GetValue(prompt)!,
                MaxNewTokens = r.GetValue(maxNew),
                Temperature = r.GetValue(temperature),
                Seed = r.GetValue(seed),
            }.Validate();
            var result = GenerateRecipe.Run(options with { Model = CommonOptions.ModelFolder(options.Model, stop) }, stop: stop);
            output.WriteLine(result.Text);
            return 0;
        });
        return command;
    }
}
