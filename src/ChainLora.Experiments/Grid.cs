using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Recipes;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Experiments;

/// <summary>Expands an experiment config into job specs under <c>OUT/jobs/ID/</c>.</summary>
public static class Grid
{
    public static List<JobSpec> Expand(ExperimentConfig config, string outDir)
    {
        var jobs = new List<JobSpec>();
        foreach (var task in config.Tasks)
            foreach (var method in config.Methods)
            {
                // Zero-shot and ICL learn nothing, so they take no learning rate.
                IReadOnlyList<double> rates = method.Kind.Trains() ? method.LearningRates ?? config.LearningRates : [0.0];
                foreach (var lr in rates)
                    foreach (var seed in config.Seeds)
                    {
                        var options = new TrainRecipeOptions
                        {
                            Task = task.Name, Data = Path.Combine(config.DataRoot, task.Data), Model = config.Model,
                            BaseDtype = StorageDtype.Parse(config.BaseDtype), Seed = seed, BatchSize = config.BatchSize,
                            Sizes = new SampleSizes(method.NumTrain ?? config.NumTrain, config.NumDev, config.NumEval),
                            Context = config.Context, Split = config.Split,
                            Source = config.SourceData is { } source ? Path.Combine(config.DataRoot, source) : null,
                            SourceWindows = config.SourceWindows,
                            Trainer = new TrainerOptions
                            {
                                Optimizer = method.Optimizer, LearningRate = lr, Epochs = config.Epochs, Variant = method.Variant,
                                RecordDeltaSpectra = config.DeltaSpectra && method.Kind.HasChain(),
                            },
                            Lora = new LoraConfig
                            {
                                Rank = method.Ranks is { Count: > 0 } r ? r[0] : config.Rank, Alpha = method.Alpha ?? config.Alpha, UseRsLora = method.Rslora,
                            },
                            Chain = new ChainConfig
                            {
                                Length = method.Links, Ranks = method.Ranks is { Count: > 0 } ranks ? ranks : null,
                                Auto = method.Knots == KnotPlacement.Auto ? new AutoKnots() : null,
                            },
                        };
                        var spec = new JobSpec { Options = config.WithOptions(options, method), Method = method.Name, Kind = method.Kind, Icl = method.Icl };
                        jobs.Add(spec with { Out = Path.Combine(Path.GetFullPath(outDir), "jobs", spec.Id) });
                    }
            }
        return jobs;
    }

    /// <summary>Writes every job's spec.json (idempotent) and returns the paths.</summary>
    public static List<string> WriteSpecs(IEnumerable<JobSpec> jobs) => jobs.Select(j =>
    {
        var path = j.SpecPath;
        if (!File.Exists(path)) j.Save(path);
        return path;
    }).ToList();
}
