// The tasks of the COLA paper (Table 1: MeZO's eleven) plus plain-text language modelling, as a table.
namespace ChainLora.Tasks;

public enum TaskKind
{
    /// <summary>Fixed verbalizer; trained as classification over the candidates (ChoiceBatch), scored by accuracy.</summary>
    Classification,
    /// <summary>Candidates per example (COPA, ReCoRD); trained with LM loss on the correct one, scored by accuracy.</summary>
    MultipleChoice,
    /// <summary>Greedy generation (SQuAD, DROP); trained with LM loss on the answer, scored by F1 and exact match.</summary>
    Generation,
    /// <summary>Plain text; trained and scored by next-token NLL.</summary>
    LanguageModelling,
    /// <summary>A user's chat or instruction data (SftData); LM loss on the responses, scored by held-out response NLL.</summary>
    Sft,
}

/// <summary>How a task's folder is laid out (see <see cref="DataFiles"/>).</summary>
public enum DataLayout { Glue, SuperGlue, Squad, Drop, Text, Sft }

/// <summary>
/// A task: its name, its kind, its folder layout, and <c>Read</c>, which turns one stored row into
/// rendered examples (the row parser followed by the template).
/// </summary>
public sealed record TaskDefinition(string Name, TaskKind Kind, DataLayout Layout, Func<JsonRow, IEnumerable<TaskExample>> Read)
{
    public string Metric => Kind switch
    {
        TaskKind.Generation => "f1",
        TaskKind.LanguageModelling => "nll_per_token",
        TaskKind.Sft => "response_nll",
        _ => "accuracy",
    };
}

public static class TaskRegistry
{
    public static readonly IReadOnlyList<TaskDefinition> All =
    [
        Define("sst2", TaskKind.Classification, DataLayout.Glue, RecordParsers.Sst2, Templates.Sst2),
        Define("rte", TaskKind.Classification, DataLayout.SuperGlue, RecordParsers.Rte, Templates.Rte),
        Define("cb", TaskKind.Classification, DataLayout.SuperGlue, RecordParsers.Cb, Templates.Cb),
        Define("boolq", TaskKind.Classification, DataLayout.SuperGlue, RecordParsers.BoolQ, Templates.BoolQ),
        Define("wsc", TaskKind.Classification, DataLayout.SuperGlue, RecordParsers.Wsc, Templates.Wsc),
        Define("wic", TaskKind.Classification, DataLayout.SuperGlue, RecordParsers.Wic, Templates.Wic),
        Define("multirc", TaskKind.Classification, DataLayout.SuperGlue, RecordParsers.MultiRc, Templates.MultiRc),
        Define("copa", TaskKind.MultipleChoice, DataLayout.SuperGlue, RecordParsers.Copa, Templates.Copa),
        Define("record", TaskKind.MultipleChoice, DataLayout.SuperGlue, RecordParsers.ReCoRD, Templates.ReCoRD),
        Define("squad", TaskKind.Generation, DataLayout.Squad, RecordParsers.Squad, Templates.Squad),
        Define("drop", TaskKind.Generation, DataLayout.Drop, RecordParsers.Drop, Templates.Drop),
        new("lm", TaskKind.LanguageModelling, DataLayout.Text,
            row => throw new InvalidOperationException($"{row.Location}: the lm task reads plain text, not rows")),
        new("sft", TaskKind.Sft, DataLayout.Sft,
            row => throw new InvalidOperationException($"{row.Location}: the sft task reads its rows with SftData")),
    ];

    public static IEnumerable<string> Names => All.Select(t => t.Name);

    /// <summary>The task called <paramref name="name"/> (case-insensitive); throws listing the known names.</summary>
    public static TaskDefinition Find(string name) =>
        All.FirstOrDefault(t => t.Name.Equals(name.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"task '{name}': expected one of {string.Join(", ", Names)}");

    static TaskDefinition Define<T>(string name, TaskKind kind, DataLayout layout, Func<JsonRow, IEnumerable<T>> parse, Func<T, TaskExample> render) =>
        new(name, kind, layout, row => parse(row).Select(render));
}
