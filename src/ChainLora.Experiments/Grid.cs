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
    /// <summary>
    /// The cells of <paramref name="config"/> that can be planned now: every rate on every seed, or, with
    /// <see cref="ExperimentConfig.RateSearchSeeds"/>, every rate on the search seeds and, for each row whose
    /// search cells all have a result under <paramref name="outDir"/>, its other seeds at the rate they chose
    /// (<see cref="LearningRates.Choose"/>, as the report chooses).
    /// </summary>
    public static List<JobSpec> Expand(ExperimentConfig config, string outDir)
    {
        var jobs = new List<JobSpec>();
        foreach (var task in config.Tasks)
            foreach (var method in config.Methods)
            {
                // Zero-shot and ICL learn nothing, so they take no learning rate.
                IReadOnlyList<double> rates = method.Kind.Trains() ? method.LearningRates ?? config.LearningRates : [0.0];
                // A row of one rate has nothing to search: it runs every seed at once.
                if (method.Kind.Trains() && config.RateSearchSeeds is { } search && rates.Count > 1)
                {
                    var searched = rates.SelectMany(lr => search.Select(seed => Cell(config, task, method, lr, seed, outDir))).ToList();
                    jobs.AddRange(searched);
                    if (Results(searched) is not { } results || AllDiverged(results)) continue;
                    var chosen = LearningRates.Choose(results);
                    jobs.AddRange(config.Seeds.Except(search).Select(seed => Cell(config, task, method, chosen, seed, outDir)));
                }
                else
                    foreach (var lr in rates)
                        jobs.AddRange(config.Seeds.Select(seed => Cell(config, task, method, lr, seed, outDir)));
            }
        return jobs;
    }

    /// <summary>The results of <paramref name="cells"/>, or null while one of them has none.</summary>
    static List<JobResult>? Results(IEnumerable<JobSpec> cells)
    {
        var results = cells.Select(j => j.TryReadResult(out _)).ToList();
        return results.Any(r => r is null) ? null : [.. results.OfType<JobResult>()];
    }

    /// <summary>Whether every rate of a finished search diverged on some search seed: no rate can be chosen, and the other seeds are not planned.</summary>
    static bool AllDiverged(IEnumerable<JobResult> searched) =>
        searched.GroupBy(r => r.Spec.LearningRate).All(rate => rate.Any(r => r.Dev is double.NegativeInfinity));

    /// <summary>
    /// The rows of <paramref name="config"/> whose seeds beyond the rate search are not in <paramref name="jobs"/>: their
    /// search has not finished, or (said beside the row) every rate of it diverged.
    /// </summary>
    public static List<string> AwaitingRateSearch(ExperimentConfig config, IReadOnlyList<JobSpec> jobs)
    {
        if (config.RateSearchSeeds is not { } search || config.Seeds.All(search.Contains)) return [];
        return config.Tasks.SelectMany(t => config.Methods.Where(m => m.Kind.Trains())
                .Where(m => !jobs.Any(j => j.Task == t.Name && j.Method == m.Name && !search.Contains(j.Seed)))
                .Select(m => $"{t.Name} {m.Name}" + (Results(jobs.Where(j => j.Task == t.Name && j.Method == m.Name)) is { } results && AllDiverged(results)
                    ? " (every rate diverged on a search seed: the grid needs lower rates)" : "")))
            .ToList();
    }

    static JobSpec Cell(ExperimentConfig config, TaskSpec task, MethodSpec method, double lr, long seed, string outDir)
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
        return spec with { Out = Path.Combine(Path.GetFullPath(outDir), "jobs", spec.Id) };
    }

    /// <summary>Writes every job's spec.json (idempotent) and returns the paths.</summary>
    public static List<string> WriteSpecs(IEnumerable<JobSpec> jobs) => jobs.Select(j =>
    {
        var path = j.SpecPath;
        if (!File.Exists(path)) j.Save(path);
        return path;
    }).ToList();
}
