using System.CommandLine;
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Recipes;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Cli.Commands;

static class TrainCommand
{
    public static Command Create(TextWriter output)
    {
        // Defaults shown in --help come from the library's records; the records validate values.
        var defaults = new TrainRecipeOptions { Task = "", Data = "" };
        var model = CommonOptions.Model();
        var task = CommonOptions.Task();
        var data = CommonOptions.Data();
        var method = CommonOptions.Choice("--method", "Fine-tuning method (cola: a chain of LoRAs)", defaults.Trainer.Method);
        var chainLength = new Option<int?>("--chain-length")
        {
            Description = $"Links in the chain, knots between whole epochs where they divide (default: {TrainerOptions.DefaultChainLength(TrainingMethod.Cola)} for cola, 1 otherwise)",
        }.AtLeast(1);
        var knots = CommonOptions.Choice("--knots",
            "Where knots sit (fixed: whole epochs split evenly; auto: where the training loss stops improving, at most --chain-length links)",
            KnotPlacement.Fixed);
        var autoDefaults = new AutoKnots();
        var knotWindow = new Option<int>("--knot-window")
        {
            Description = "auto knots: steps per window compared (0 = 5% of the budget)", DefaultValueFactory = _ => autoDefaults.Window,
        }.AtLeast(0);
        var knotThreshold = new Option<double>("--knot-threshold")
        {
            Description = "auto knots: tie a knot when the windowed mean loss improves by less than this fraction",
            DefaultValueFactory = _ => autoDefaults.Threshold,
        }.Fraction();
        var variant = CommonOptions.Choice("--cola-variant", "Chain variant (docs/METHOD.md; paper: Algorithm 1 as published)", defaults.Trainer.Variant);
        var ranks = new Option<string?>("--ranks") { Description = "Rank of each link, e.g. 8,4 (the last repeats; default: --rank for every link)" }
            .Check(text => text is null || ParseRanks(text) is not null ? null : $"--ranks '{text}': expected a comma-separated list of ranks, whole numbers from 1 to {int.MaxValue}");
        var rank = new Option<int>("--rank") { Description = "LoRA rank r", DefaultValueFactory = _ => defaults.Lora.Rank }.AtLeast(1);
        var alpha = new Option<double>("--alpha") { Description = "LoRA alpha (scale alpha / r)", DefaultValueFactory = _ => defaults.Lora.Alpha }.Positive();
        var rsLora = new Option<bool>("--rslora")
        {
            Description = "rsLoRA (Kalajdzievski 2023): scale B A by alpha / sqrt(r) instead of alpha / r; recorded as use_rslora in result.json and PEFT exports",
        };
        var dropout = new Option<double>("--lora-dropout") { Description = "Dropout on the LoRA input", DefaultValueFactory = _ => defaults.Lora.Dropout }.Fraction();
        var targets = new Option<string?>("--targets")
        {
            Description = "Modules to adapt, comma-separated, or all-linear (every linear layer but the LM head, as PEFT). " +
                $"Default: the model family's. By model type: {string.Join("; ", LoraConfig.TargetsHelp())}",
        };
        var bias = CommonOptions.Choice("--lora-bias", "Biases that train with LoRA", defaults.Lora.Bias);
        var epochs = new Option<int>("--epochs") { Description = "Passes over the train sample", DefaultValueFactory = _ => defaults.Trainer.Epochs }.AtLeast(1);
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (linear decay to 0)", DefaultValueFactory = _ => defaults.Trainer.LearningRate }.Positive();
        var optimizer = CommonOptions.Choice("--optimizer", "Optimizer", defaults.Trainer.Optimizer);
        var weightDecay = new Option<double>("--weight-decay") { Description = "Weight decay", DefaultValueFactory = _ => defaults.Trainer.WeightDecay }.NotNegative();
        var momentum = new Option<double>("--momentum") { Description = "SGD momentum", DefaultValueFactory = _ => defaults.Trainer.Momentum }.Fraction();
        var warmup = new Option<double>("--warmup-ratio") { Description = "Fraction of the steps spent warming up", DefaultValueFactory = _ => defaults.Trainer.WarmupRatio }.Fraction();
        var clip = new Option<double>("--max-grad-norm") { Description = "Gradient clipping (0 = off)", DefaultValueFactory = _ => defaults.Trainer.MaxGradNorm }.NotNegative();
        var batch = new Option<int>("--batch-size") { Description = "Examples per micro-batch (lm: windows)", DefaultValueFactory = _ => defaults.BatchSize }.AtLeast(1);
        var accumulation = new Option<int>("--grad-accum")
        {
            Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => defaults.Trainer.GradientAccumulation,
        }.AtLeast(1);
        var numTrain = CommonOptions.NumTrain("Train examples: the train pool shuffled with the seed, first N (lm: windows)");
        var numDev = new Option<int>("--num-dev") { Description = "Dev examples, the N after the train sample (lm: windows; with --split contiguous, from the dev region)", DefaultValueFactory = _ => defaults.Sizes.Dev }.AtLeast(0);
        var numEval = CommonOptions.NumEval();
        var context = CommonOptions.Context();
        var split = CommonOptions.Split();
        var trainOnInputs = new Option<bool>("--train-on-inputs") { Description = "sft: the loss on the prompt, system and user tokens too, not only the responses" };
        var truncation = CommonOptions.Truncation();
        var pack = new Option<bool>("--pack")
        {
            Description = "sft: fill each row of --context positions with several examples, best fit (--batch-size then counts rows); " +
                          "attention and positions stay inside each example",
        };
        var source = CommonOptions.Source();
        var sourceWindows = CommonOptions.SourceWindows();
        var seed = CommonOptions.Seed();
        var outDir = new Option<string>("--out") { Description = "Folder for result.json and train_log.jsonl (created if missing; other files are left alone)", Required = true }
            .WritableFolder();
        var adapter = CommonOptions.Adapter("A PEFT LoRA adapter folder, merged into the weights before training (exports stay relative to the pretrained model)");
        var checkpointEvery = new Option<int>("--checkpoint-every")
        {
            Description = "Also checkpoint to OUT/checkpoint every N optimizer steps (link ends always checkpoint; 0 = only those)",
            DefaultValueFactory = _ => defaults.CheckpointEvery,
        }.AtLeast(0);
        var resume = new Option<string?>("--resume")
        {
            Description = "Continue an interrupted run exactly from its checkpoint (a checkpoint folder or a run folder holding checkpoint/); pass the same options",
        }.ExistingFolder();
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace a run already in --out (its log, checkpoint and result.json)" };
        var tensorBoard = new Option<string>("--tensorboard")
        {
            Description = "Also write TensorBoard events into DIR (loss, learning rate, tokens/s, grad norm per step, a marker at each knot, dev and test metrics); give each run its own DIR",
            HelpName = "DIR",
        }.WritableFolder();
        var checkpointing = CommonOptions.GradientCheckpointing();
        var spectra = new Option<bool>("--delta-spectra")
        {
            Description = "Log the singular values and effective rank of each adapted layer's accumulated delta W at every knot and at the end (train_log.jsonl, result.json)",
        };
        var json = CommonOptions.Json();
        var device = CommonOptions.Device();
        var dtype = CommonOptions.BaseDtype();
        var activations = CommonOptions.Activations();
        var command = new Command("train",
            "Fine-tune on a task with LoRA, COLA or full fine-tuning, then score the dev and test samples; writes OUT/result.json")
        {
            model, task, data, method, chainLength, knots, knotWindow, knotThreshold, variant, ranks, rank, alpha, rsLora, dropout, targets, bias, epochs, lr, optimizer, weightDecay,
            momentum, warmup, clip, batch, accumulation, numTrain, numDev, numEval, context, split, trainOnInputs, truncation, pack, source, sourceWindows, seed, outDir, adapter, checkpointEvery, resume,
            overwrite, tensorBoard, checkpointing, spectra, json, device, dtype, activations,
        };
        command.SetStoppableAction((r, stop) =>
        {
            var trainingMethod = r.GetEnum<TrainingMethod>(method);
            var options = new TrainRecipeOptions
            {
                Model = r.GetValue(model)!,
                BaseDtype = StorageDtype.Parse(r.GetValue(dtype)!),
                Device = CommonOptions.ParseDevice(r.GetValue(device)!),
                Task = r.GetValue(task)!,
                Data = r.GetValue(data)!,
                Sizes = new SampleSizes(r.GetValue(numTrain), r.GetValue(numDev), r.GetValue(numEval)),
                Seed = r.GetValue(seed),
                BatchSize = r.GetValue(batch),
                Context = r.GetValue(context),
                Split = r.GetEnum<TextSplit>(split),
                TrainOnInputs = r.GetValue(trainOnInputs),
                Truncation = r.GetEnum<SftTruncationMode>(truncation),
                Pack = r.GetValue(pack),
                Source = r.GetValue(source),
                SourceWindows = r.GetValue(sourceWindows),
                Trainer = new TrainerOptions
                {
                    Method = trainingMethod, Optimizer = r.GetEnum<OptimizerKind>(optimizer),
                    LearningRate = r.GetValue(lr), WeightDecay = r.GetValue(weightDecay), Momentum = r.GetValue(momentum),
                    Epochs = r.GetValue(epochs), GradientAccumulation = r.GetValue(accumulation), MaxGradNorm = r.GetValue(clip),
                    WarmupRatio = r.GetValue(warmup), GradientCheckpointing = r.GetValue(checkpointing), RecordDeltaSpectra = r.GetValue(spectra),
                    Activations = r.GetEnum<ActivationPrecision>(activations),
                    Variant = r.GetEnum<ColaVariant>(variant),
                },
                Lora = defaults.Lora with
                {
                    Rank = r.GetValue(rank),
                    Alpha = r.GetValue(alpha),
                    UseRsLora = r.GetValue(rsLora),
                    Dropout = r.GetValue(dropout),
                    Bias = r.GetEnum<LoraBias>(bias),
                    TargetModules = r.GetValue(targets) is { } t ? t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : defaults.Lora.TargetModules,
                },
                Chain = new ChainConfig
                {
                    Length = r.GetValue(chainLength),
                    Ranks = r.GetValue(ranks) is { } rs ? ParseRanks(rs) : null,
                    Auto = r.GetEnum<KnotPlacement>(knots) == KnotPlacement.Auto
                        ? new AutoKnots { Window = r.GetValue(knotWindow), Threshold = r.GetValue(knotThreshold) } : null,
                },
                OutDir = r.GetValue(outDir)!,
                Adapter = r.GetValue(adapter),
                CheckpointEvery = r.GetValue(checkpointEvery),
                ResumeFrom = r.GetValue(resume),
                Overwrite = r.GetValue(overwrite),
                TensorBoardDir = r.GetValue(tensorBoard),
            };
            // Ctrl+C or SIGTERM (stop): a download ends at once; training finishes the step in progress,
            // checkpoints and exits 130 (resume with --resume OUT).
            // Checked before a Hub model is downloaded or anything is loaded.
            options = options.Validate() with { Model = CommonOptions.ModelFolder(options.Model, stop), Stop = stop };
            using var recipe = TrainRecipe.Setup(options);
            var label = $"{recipe.Prepared.Task.Name} {EnumNames.Name(trainingMethod)}";
            if (recipe.Prepared.Data.Truncation is { CutExamples: > 0 } cut)
                r.InvocationConfiguration.Error.WriteLine(
                    (cut.Mode == SftTruncationMode.Drop
                        ? $"note: {cut.CutExamples} examples were longer than {cut.MaxTokens} tokens and were dropped (--truncation drop)"
                        : $"note: {cut.CutExamples} examples were longer than {cut.MaxTokens} tokens: {cut.CutTokens} tokens cut from their ends" +
                          (cut.Dropped > 0 ? $"; {cut.Dropped} left with no response token were dropped" : "")));
            if (recipe.Prepared.Data.Packing is { } packing)
                r.InvocationConfiguration.Error.WriteLine(
                    $"note: packed {packing.Examples} train examples into {packing.Rows} rows of up to {packing.Capacity} positions, {100 * packing.Fill:F0}% filled");
            var result = r.GetValue(json)
                ? recipe.Run()
                : TrainingProgress.Run([label], recipe.TotalSteps, report => recipe.Run(s => report(label, s)));
            if (r.GetValue(json))
            {
                output.WriteLine(ResultFile.ToJson(result));
                return 0;
            }
            var links = result.Training.Links;
            output.WriteLine($"{result.Task} {EnumNames.Name(result.Method)}, seed {result.Seed}: {result.Training.Steps} steps over {links.Count} link(s), " +
                $"{result.Data.Train} train examples, {result.WallSeconds:F1} s");
            foreach (var link in links)
                output.WriteLine($"  link {link.Link}{(link.Rank is { } linkRank ? $" (rank {linkRank})" : "")}: mean train loss {link.MeanLoss:F4}, last {link.FinalLoss:F4}");
            output.WriteLine($"  dev  {EvalCommand.Describe(result.Dev)} ({result.Data.Dev} examples)");
            output.WriteLine($"  test {EvalCommand.Describe(result.Test)} ({result.Data.Test} examples)");
            if (result.Source is { } sourceScore) output.WriteLine($"  source {EvalCommand.Describe(sourceScore)}");
            if (result.Data.Note is { } note) output.WriteLine($"  note: {note}");
            output.WriteLine($"  wrote {Path.Combine(options.OutDir!, ResultFile.Name)}");
            return 0;
        });
        return command;
    }

    /// <summary>"8,4" as ranks; null when an entry is not a whole number from 1 to int.MaxValue (the parse check names it).</summary>
    static List<int>? ParseRanks(string text)
    {
        var ranks = new List<int>();
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(entry, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var rank) || rank < 1)
                return null;
            ranks.Add(rank);
        }
        return ranks.Count > 0 ? ranks : null;
    }
}
