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
                        var spec = new JobSpec
                        {
                            Task = task.Name, Data = Path.Combine(config.DataRoot, task.Data), Model = config.Model,
                            Method = method.Name, Kind = method.Kind, ChainLength = method.Links, Ranks = method.Ranks,
                            Rank = method.Ranks is { Count: > 0 } r ? r[0] : config.Rank, Alpha = method.Alpha ?? config.Alpha, Icl = method.Icl,
                            Rslora = method.Rslora,
                            Source = config.SourceData is { } source ? Path.Combine(config.DataRoot, source) : null,
                            SourceWindows = config.SourceData is null ? null : config.SourceWindows,
                            DeltaSpectra = config.DeltaSpectra && method.Kind.HasChain(),
                            Optimizer = method.Optimizer, LearningRate = lr, Seed = seed, Epochs = config.Epochs,
                            NumTrain = method.NumTrain ?? config.NumTrain, NumDev = config.NumDev, NumEval = config.NumEval,
                            BatchSize = config.BatchSize, BaseDtype = config.BaseDtype, Variant = method.Variant, Knots = method.Knots,
                            Context = config.Context, Split = config.Split,
                        };
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
