// A task folder read into its two labelled pools: the train pool and the validation split that
// test examples are drawn from. Test splits are unlabelled in every public GLUE / SuperGLUE release
// and are ignored, except a GLUE test.tsv whose header has a "label" column: then (shared/data/sst2,
// where test.tsv is the GLUE validation set and train + dev the GLUE train set) test.tsv is the
// validation split and dev joins the train pool.
namespace ChainLora.Tasks;

public sealed record TaskPools(IReadOnlyList<TaskExample> Train, IReadOnlyList<TaskExample> Validation,
    IReadOnlyList<string> TrainFiles, IReadOnlyList<string> ValidationFiles);

public static class TaskData
{
    public static TaskPools Load(TaskDefinition task, string dir)
    {
        if (task.Kind == TaskKind.LanguageModelling) throw new ArgumentException("the lm task reads plain text: use TextCorpus");
        var files = DataFiles.Find(dir);
        var train = files.GetValueOrDefault(Split.Train) ?? [];
        var validation = files.GetValueOrDefault(Split.Validation) ?? [];
        if (task.Layout == DataLayout.Glue && files.GetValueOrDefault(Split.Test) is { } test
            && test.All(f => f.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) && DataFiles.TsvHasLabels(f)))
        {
            train = [.. train, .. validation];
            validation = test;
        }
        if (train.Count == 0 && validation.Count == 0)
            throw new FileNotFoundException(
                $"{dir}: no {task.Name} data: expected files whose names say train, dev/val/validation (or a labelled test.tsv), " +
                "ending in .tsv, .jsonl, .json or .parquet");
        return new TaskPools(Read(task, train), Read(task, validation), train, validation);
    }

    /// <summary>Every example of <paramref name="files"/>, in file order; a file without examples is an error.</summary>
    public static List<TaskExample> Read(TaskDefinition task, IReadOnlyList<string> files)
    {
        var examples = new List<TaskExample>();
        foreach (var file in files)
        {
            var before = examples.Count;
            foreach (var row in DataFiles.ReadRows(file, task.Layout)) examples.AddRange(task.Read(row));
            if (examples.Count == before) throw new InvalidDataException($"{file}: no {task.Name} examples");
        }
        return examples;
    }
}
