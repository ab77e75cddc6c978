using System.CommandLine;
using ChainLora.Chain;
using ChainLora.Loading;
using ChainLora.Lora;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Cli.Commands;

static class TrainCommand
{
    public static Command Create(TextWriter output)
    {
        var defaults = new TaskRunOptions { Task = "", Data = "" };
        var model = CommonOptions.Model();
        var task = EvalCommand.Task();
        var data = EvalCommand.Data();
        var method = new Option<string>("--method") { Description = "lora, cola (a chain of LoRAs) or full", DefaultValueFactory = _ => "lora" }
            .AcceptOnlyFromAmong("lora", "cola", "full");
        var chainLength = new Option<int?>("--chain-length") { Description = "Links in the chain, knots between whole epochs where they divide (default: 3 for cola, 1 otherwise)" }
            .Check(v => v is null or >= 1 ? null : $"--chain-length {v}: must be at least 1");
        var ranks = new Option<string?>("--ranks") { Description = "Rank of each link, e.g. 8,4 (the last repeats; default: --rank for every link)" }
            .Check(v => v is null || v.Split(',').All(x => int.TryParse(x.Trim(), out var n) && n >= 1) ? null : $"--ranks '{v}': expected positive integers such as 8,4");
        var rank = new Option<int>("--rank") { Description = "LoRA rank r", DefaultValueFactory = _ => defaults.Lora.Rank }.AtLeast(1);
        var alpha = new Option<double>("--alpha") { Description = "LoRA alpha (scale alpha / r)", DefaultValueFactory = _ => defaults.Lora.Alpha }
            .Check(v => v > 0 ? null : $"--alpha {v}: must be positive");
        var dropout = new Option<double>("--lora-dropout") { Description = "Dropout on the LoRA input", DefaultValueFactory = _ => 0 }
            .Check(v => v is >= 0 and < 1 ? null : $"--lora-dropout {v}: must be in [0, 1)");
        var targets = new Option<string?>("--targets") { Description = "Modules to adapt, e.g. q_proj,v_proj (default: the architecture's, q_proj and v_proj)" };
        var bias = new Option<string>("--lora-bias") { Description = "Biases that train with LoRA: none, all or lora_only", DefaultValueFactory = _ => "none" }
            .AcceptOnlyFromAmong("none", "all", "lora_only");
        var epochs = new Option<int>("--epochs") { Description = "Passes over the train sample", DefaultValueFactory = _ => defaults.Trainer.Epochs }.AtLeast(1);
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (linear decay to 0)", DefaultValueFactory = _ => defaults.Trainer.LearningRate }
            .Check(v => v > 0 ? null : $"--lr {v}: must be positive");
        var optimizer = new Option<string>("--optimizer") { Description = "adamw, sgd or adagrad", DefaultValueFactory = _ => "adamw" }
            .AcceptOnlyFromAmong("adamw", "sgd", "adagrad");
        var weightDecay = new Option<double>("--weight-decay") { Description = "Weight decay", DefaultValueFactory = _ => 0 }
            .Check(v => v >= 0 ? null : $"--weight-decay {v}: must be >= 0");
        var momentum = new Option<double>("--momentum") { Description = "SGD momentum", DefaultValueFactory = _ => 0 }
            .Check(v => v is >= 0 and < 1 ? null : $"--momentum {v}: must be in [0, 1)");
        var warmup = new Option<double>("--warmup-ratio") { Description = "Fraction of the steps spent warming up", DefaultValueFactory = _ => 0 }
            .Check(v => v is >= 0 and < 1 ? null : $"--warmup-ratio {v}: must be in [0, 1)");
        var clip = new Option<double>("--max-grad-norm") { Description = "Gradient clipping (0 = off)", DefaultValueFactory = _ => 0 }
            .Check(v => v >= 0 ? null : $"--max-grad-norm {v}: must be >= 0");
        var batch = new Option<int>("--batch-size") { Description = "Examples per micro-batch (lm: windows)", DefaultValueFactory = _ => defaults.BatchSize }.AtLeast(1);
        var accumulation = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 }.AtLeast(1);
        var numTrain = EvalCommand.NumTrain("Train examples: the train pool shuffled with the seed, first N (lm: windows)");
        var numDev = new Option<int>("--num-dev") { Description = "Dev examples, the N after the train sample (lm: windows)", DefaultValueFactory = _ => defaults.Sizes.Dev }
            .AtLeast(0);
        var numEval = EvalCommand.NumEval();
        var seed = CommonOptions.Seed();
        var outDir = new Option<string>("--out") { Description = "Folder for result.json and train_log.jsonl (created if missing; other files are left alone)", Required = true };
        var adapter = EvalCommand.Adapter("A PEFT LoRA adapter folder, merged into the weights before training (exports stay relative to the pretrained model)");
        var checkpointEvery = new Option<int>("--checkpoint-every")
        {
            Description = "Also checkpoint to OUT/checkpoint every N optimizer steps (link ends always checkpoint; 0 = only those)",
            DefaultValueFactory = _ => 0,
        }.AtLeast(0);
        var resume = new Option<string?>("--resume")
        {
            Description = "Continue an interrupted run exactly from its checkpoint (a checkpoint folder or a run folder holding checkpoint/); pass the same options",
        };
        var checkpointing = CommonOptions.GradientCheckpointing();
        var json = CommonOptions.Json();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.BaseDtype();
        var command = new Command("train",
            "Fine-tune on a task with LoRA, COLA or full fine-tuning, then score the dev and test samples; writes OUT/result.json")
        {
            model, task, data, method, chainLength, ranks, rank, alpha, dropout, targets, bias, epochs, lr, optimizer, weightDecay,
            momentum, warmup, clip, batch, accumulation, numTrain, numDev, numEval, seed, outDir, adapter, checkpointEvery, resume,
            checkpointing, json, device, dtype,
        };
        command.SetAction(r =>
        {
            var trainingMethod = TrainerOptions.ParseMethod(r.GetValue(method)!);
            var baseDtype = r.GetValue(dtype)!;
            using var loaded = PretrainedModel.Load(CommonOptions.ModelFolder(r.GetValue(model)!),
                CommonOptions.ParseDtype(baseDtype), CommonOptions.ParseDevice(r.GetValue(device)!));
            var options = new TaskRunOptions
            {
                Task = r.GetValue(task)!,
                Data = r.GetValue(data)!,
                Sizes = new SampleSizes(r.GetValue(numTrain), r.GetValue(numDev), r.GetValue(numEval)),
                Seed = r.GetValue(seed),
                BatchSize = r.GetValue(batch),
                Trainer = new TrainerOptions
                {
                    Method = trainingMethod, Optimizer = TrainerOptions.ParseOptimizer(r.GetValue(optimizer)!),
                    LearningRate = r.GetValue(lr), WeightDecay = r.GetValue(weightDecay), Momentum = r.GetValue(momentum),
                    Epochs = r.GetValue(epochs), GradientAccumulation = r.GetValue(accumulation), MaxGradNorm = r.GetValue(clip),
                    WarmupRatio = r.GetValue(warmup), GradientCheckpointing = r.GetValue(checkpointing),
                },
                Lora = new LoraConfig
                {
                    Rank = r.GetValue(rank), Alpha = r.GetValue(alpha), Dropout = r.GetValue(dropout),
                    TargetModules = r.GetValue(targets) is { } t ? ParseList(t, s => s) : LoraConfig.DefaultTargetsFor(loaded.Model.ModelType),
                    Bias = LoraConfig.ParseBias(r.GetValue(bias)!),
                },
                Chain = new ChainConfig
                {
                    Length = r.GetValue(chainLength) ?? (trainingMethod == TrainingMethod.Cola ? 3 : 1),
                    Ranks = r.GetValue(ranks) is { } rs ? ParseList(rs, int.Parse) : null,
                },
                OutDir = r.GetValue(outDir)!,
                BaseDtype = baseDtype,
                Adapter = r.GetValue(adapter),
                CheckpointEvery = r.GetValue(checkpointEvery),
                ResumeFrom = r.GetValue(resume),
            };
            using var recipe = TaskRecipe.Setup(loaded, options);
            var label = $"{recipe.Prepared.Task.Name} {trainingMethod.ToString().ToLowerInvariant()}";
            var result = r.GetValue(json)
                ? recipe.Run()
                : TrainingProgress.Run([label], recipe.TotalSteps, report => recipe.Run(s => report(label, s)));
            if (r.GetValue(json))
            {
                output.WriteLine(ResultFile.ToJson(result));
                return 0;
            }
            var links = result.Training.Links;
            output.WriteLine($"{result.Task} {result.Method}, seed {result.Seed}: {result.Training.Steps} steps over {links.Count} link(s), " +
                $"{result.Data.Train} train examples, {result.WallSeconds:F1} s");
            foreach (var link in links)
                output.WriteLine($"  link {link.Link}{(link.Rank is { } linkRank ? $" (rank {linkRank})" : "")}: mean train loss {link.MeanLoss:F4}, last {link.FinalLoss:F4}");
            output.WriteLine($"  dev  {EvalCommand.Describe(result.Dev)} ({result.Data.Dev} examples)");
            output.WriteLine($"  test {EvalCommand.Describe(result.Test)} ({result.Data.Test} examples)");
            if (result.Data.Note is { } note) output.WriteLine($"  note: {note}");
            output.WriteLine($"  wrote {Path.Combine(options.OutDir, "result.json")}");
            return 0;
        });
        return command;
    }

    static List<T> ParseList<T>(string text, Func<string, T> parse)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(parse).ToList();
        }
        catch (FormatException)
        {
            throw new ArgumentException($"'{text}': expected a comma-separated list");
        }
    }
}
