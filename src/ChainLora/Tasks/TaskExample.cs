// A task example after its template: the text the model reads and what should follow it.
// The text between prompt and answer is split so that the answer carries the boundary space
// (" great", " the sun was rising."): the tokenizer then sees "▁great" as in running text.
namespace ChainLora.Tasks;

public abstract record TaskExample(string Prompt)
{
    /// <summary>The example with its gold answer, as an in-context demonstration.</summary>
    public abstract string Demonstration { get; }
}

/// <summary>
/// Candidates scored after the prompt; the prediction is the candidate with the highest mean
/// token log-probability. <c>Correct</c> lists the right candidates (ReCoRD may have several).
/// </summary>
public sealed record ChoiceExample(string Prompt, IReadOnlyList<string> Options, IReadOnlyList<int> Correct) : TaskExample(Prompt)
{
    public ChoiceExample(string prompt, IReadOnlyList<string> options, int label) : this(prompt, options, [label]) { }

    /// <summary>The first correct candidate: the class for classification, the continuation trained on otherwise.</summary>
    public int Label => Correct[0];

    public override string Demonstration => Prompt + Options[Label];
}

/// <summary>Generated answer: the model learns <c>Target</c> after the prompt and is scored against every gold answer.</summary>
public sealed record AnswerExample(string Prompt, string Target, IReadOnlyList<string> Answers) : TaskExample(Prompt)
{
    public override string Demonstration => Prompt + Target.TrimEnd('\n');
}
