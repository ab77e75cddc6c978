using System.CommandLine;
using ChainLora.Evaluation;
using ChainLora.Export;
using ChainLora.Loading;
using ChainLora.Models;

namespace ChainLora.Cli.Commands;

/// <summary>`chainlora chat`: the model's chat template applied, each reply streamed until the end of its turn.</summary>
static class ChatCommand
{
    public static Command Create(TextWriter output)
    {
        var model = CommonOptions.Model();
        var adapter = CommonOptions.Adapter("A PEFT LoRA adapter folder (ours or PEFT's), merged into the weights before chatting");
        var prompt = new Option<string?>("--prompt") { Description = "One user turn: print the reply and exit (without it: one turn per line of standard input until its end)" };
        var system = new Option<string?>("--system") { Description = "A system prompt opening the conversation" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens per reply at most", DefaultValueFactory = _ => 256 }.AtLeast(1);
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy; above 0 samples from softmax(logits / T)", DefaultValueFactory = _ => 0 }
            .NotNegative();
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.BaseDtype();
        var command = new Command("chat", "Chat with a model through its chat template (tokenizer_config.json or chat_template.jinja; ChatML when it has none); replies stream and stop at the end of the turn")
        {
            model, adapter, prompt, system, maxNew, temperature, seed, device, dtype,
        };
        command.SetStoppableAction((r, stop) =>
        {
            var error = r.InvocationConfiguration.Error;
            var options = new GenerationOptions(r.GetValue(maxNew), r.GetValue(temperature), r.GetValue(seed)).Validate() with { Stop = stop };
            var folder = CommonOptions.ModelFolder(r.GetValue(model)!, stop);
            using var loaded = PretrainedModel.Load(folder, StorageDtype.Parse(r.GetValue(dtype)!), CommonOptions.ParseDevice(r.GetValue(device)!));
            if (r.GetValue(adapter) is { } adapterDir) PeftAdapter.MergeFolderInto(adapterDir, loaded.Model);
            var session = ChatSession.For(loaded.Model, loaded.Tokenizer, folder, r.GetValue(system));
            void Say(string user)
            {
                session.Reply(user, options, piece =>
                {
                    output.Write(piece);
                    output.Flush();
                });
                output.WriteLine();
            }
            if (r.GetValue(prompt) is { } single)
            {
                Say(single);
                return 0;
            }
            error.WriteLine("one user turn per line; end with Ctrl+D");
            while (Console.In.ReadLine() is { } line)
            {
                stop.ThrowIfCancellationRequested();
                if (line.Trim().Length > 0) Say(line);
            }
            return 0;
        });
        return command;
    }
}
