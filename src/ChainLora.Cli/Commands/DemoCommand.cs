using System.CommandLine;
using ChainLora.Demo;
using ChainLora.IO;
using Spectre.Console;

namespace ChainLora.Cli.Commands;

static class DemoCommand
{
    public static Command Create(TextWriter output)
    {
        var steps = new Option<int>("--steps") { Description = "Optimizer steps per method (the shared budget)", DefaultValueFactory = _ => new DemoOptions().Steps }
            .AtLeast(6);
        var lr = new Option<double>("--lr") { Description = "AdamW learning rate, the same for every method", DefaultValueFactory = _ => new DemoOptions().LearningRate }
            .Positive();
        var variants = new Option<bool>("--variants")
        {
            Description = "Also run the chain variants at chain length 3: automatic knots, per-link LR rewarm, gradient-initialised links",
        };
        var seed = CommonOptions.Seed();
        var json = CommonOptions.Json();
        var command = new Command("demo",
            "Built-in residual-learning benchmark: fine-tune a random Llama toward the same model plus a rank-24 update of q_proj/v_proj " +
            "with LoRA r=8, COLA (chain length 2 and 3), COLA rank step-down (8,4) and LoRA r=24 under one step budget")
        {
            steps, lr, variants, seed, json,
        };
        command.SetAction(r =>
        {
            var options = new DemoOptions { Steps = r.GetValue(steps), LearningRate = r.GetValue(lr), Seed = r.GetValue(seed) };
            IReadOnlyList<DemoMethod> methods = r.GetValue(variants)
                ? [.. ResidualLearningDemo.DefaultMethods(options), .. ResidualLearningDemo.VariantMethods(options)]
                : ResidualLearningDemo.DefaultMethods(options);
            var runs = TrainingProgress.Run(methods.Select(m => m.Name).ToList(), options.Steps / 6 * 6,
                report => ResidualLearningDemo.Run(options, methods, (m, s) => report(m.Name, s)));
            if (r.GetValue(json))
            {
                output.WriteLine(JsonLines.Serialize(new
                {
                    runs = runs.Select(x => new
                    {
                        method = x.Method, chain_length = x.ChainLength, ranks = x.Ranks, trainable_parameters = x.TrainableParameters,
                        final_train_loss = x.FinalTrainLoss, heldout_loss = x.HeldoutLoss, relative_update_error = x.RelativeUpdateError,
                        best_single_link_error = x.BestSingleLinkError,
                        training_flops = x.TrainingFlops, seconds = x.Seconds,
                    }),
                }));
                return 0;
            }
            var table = new Table().Title("Residual learning toward W + dW* (rank 24 on q_proj, v_proj), same step budget");
            foreach (var c in new[] { "method", "ranks", "trainable", "train loss", "held-out loss", "||dW*-sum dW||/||dW*||", "best one link", "train GFLOPs", "seconds" })
                table.AddColumn(new TableColumn(c).RightAligned());
            foreach (var x in runs)
                table.AddRow(Markup.Escape(x.Method), string.Join(",", x.Ranks), $"{x.TrainableParameters:N0}", $"{x.FinalTrainLoss:F5}",
                    $"{x.HeldoutLoss:F5}", $"{x.RelativeUpdateError:F4}", $"{x.BestSingleLinkError:F4}", $"{x.TrainingFlops / 1e9:F1}", $"{x.Seconds:F1}");
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
            console.Profile.Width = Math.Max(console.Profile.Width, 132);
            console.Write(table);
            console.WriteLine("best one link: the least relative error any single update of the run's largest link rank can reach " +
                              "(Eckart-Young on dW*'s singular values); a chain sums several links and can go below it.");
            return 0;
        });
        return command;
    }
}
