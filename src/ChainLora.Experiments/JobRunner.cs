// Runs one grid cell in this process by calling the recipes: a training kind through TrainRecipe
// (which writes result.json, the log, the chain and checkpoints into the job's folder), a scoring
// kind through EvalRecipe (its result written here). The same whichever scheduler started it.
using ChainLora.Recipes;
using ChainLora.Training;

namespace ChainLora.Experiments;

public static class JobRunner
{
    /// <summary>
    /// Runs <paramref name="job"/> unless it has a result; returns false when it was already finished.
    /// <paramref name="tensorBoardRoot"/>: TensorBoard events go to its subfolder named by the job's id.
    /// </summary>
    public static bool Run(JobSpec job, Action<StepReport>? onStep = null, string? tensorBoardRoot = null)
    {
        if (job.IsFinished) return false;
        if (job.Out.Length == 0) throw new InvalidDataException($"job {job.Id}: field 'out' is required");
        Directory.CreateDirectory(job.Out);
        if (job.Kind.Trains())
        {
            // A cell stopped part-way (a scheduler's time limit, a session's end) continues from its checkpoint.
            var options = TrainOptions(job);
            var interrupted = File.Exists(Checkpoint.StatePath(job.Out));
            // Without a checkpoint, whatever a stopped attempt left is replaced: a cell is only ever its spec.
            TrainRecipe.Run(options with
            {
                ResumeFrom = interrupted ? job.Out : null,
                Overwrite = !interrupted,
                TensorBoardDir = tensorBoardRoot is null ? null : Path.Combine(tensorBoardRoot, job.Id),
            }, onStep);
        }
        else
            ResultFile.Write(job.ResultPath, EvalRecipe.Run(EvalOptions(job)));
        return true;
    }

    /// <summary>The job's settings validated as its recipe will, and its model and data present; an error names the job.</summary>
    public static void Check(JobSpec job)
    {
        try
        {
            if (job.Kind.Trains()) TrainOptions(job).Validate();
            else EvalOptions(job).Validate();
            if (job.Kind == MethodKind.Icl && job.Icl < 1) throw new ArgumentException($"icl {job.Icl}: in-context learning needs at least one demonstration");
            if (!Directory.Exists(job.Options.Model) && !IO.Hub.HubModelResolver.LooksLikeRepoId(job.Options.Model))
                throw new ArgumentException($"model '{job.Options.Model}' is neither a folder nor a Hub id");
            if (!Directory.Exists(job.Options.Data) && !File.Exists(job.Options.Data)) throw new ArgumentException($"data '{job.Options.Data}' not found");
            if (job.Options.Source is { } source && !File.Exists(source)) throw new ArgumentException($"source text '{source}' not found");
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"job {job.Id} ({job.Task}, {job.Method}): {e.Message}", e);
        }
    }

    /// <summary>
    /// The cell's options record with the trainer's method its kind names, and where it writes: its folder, and a
    /// checkpoint every <see cref="CheckpointEvery"/> steps.
    /// </summary>
    public static TrainRecipeOptions TrainOptions(JobSpec job) => job.Options with
    {
        Trainer = job.Options.Trainer with { Method = job.Kind.TrainingMethod() },
        OutDir = job.Out,
        CheckpointEvery = CheckpointEvery,
    };

    /// <summary>Optimizer steps between a cell's checkpoints (link ends always checkpoint).</summary>
    public const int CheckpointEvery = 100;

    /// <summary>What a scoring cell reads of its options record: model, task, data, sizes, seed, windows and the source text.</summary>
    public static EvalRecipeOptions EvalOptions(JobSpec job) => new()
    {
        Model = job.Options.Model,
        BaseDtype = job.Options.BaseDtype,
        Task = job.Task,
        Data = job.Options.Data,
        Seed = job.Seed,
        NumTrain = job.Options.Sizes.Train,
        NumEval = job.Options.Sizes.Eval,
        Context = job.Options.Context,
        Split = job.Options.Split,
        Source = job.Options.Source,
        SourceWindows = job.Options.SourceWindows,
        Demonstrations = job.Kind == MethodKind.Icl ? job.Icl : 0,
    };
}
