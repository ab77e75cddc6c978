// One example of each task as it is stored (the fields of the GLUE / SuperGLUE / SQuAD / DROP
// releases), before any template is applied.
namespace ChainLora.Tasks;

/// <summary>SST-2: label 0 negative, 1 positive.</summary>
public sealed record Sst2Record(string Sentence, int Label);

/// <summary>RTE: label 0 entailment, 1 not_entailment.</summary>
public sealed record RteRecord(string Premise, string Hypothesis, int Label);

/// <summary>CB: label 0 entailment, 1 contradiction, 2 neutral.</summary>
public sealed record CbRecord(string Premise, string Hypothesis, int Label);

public sealed record BoolQRecord(string Passage, string Question, bool Label);

/// <summary>WSC: does the pronoun <c>Span2Text</c> refer to <c>Span1Text</c>?</summary>
public sealed record WscRecord(string Text, string Span1Text, string Span2Text, bool Label);

public sealed record WicRecord(string Word, string Sentence1, string Sentence2, bool Label);

/// <summary>MultiRC: one candidate answer to a question about a paragraph; Label says whether it is correct.</summary>
public sealed record MultiRcRecord(string Paragraph, string Question, string Answer, bool Label);

/// <summary>COPA: <c>Question</c> is "cause" or "effect"; Label 0 picks Choice1, 1 picks Choice2.</summary>
public sealed record CopaRecord(string Premise, string Choice1, string Choice2, string Question, int Label);

/// <summary>ReCoRD: one cloze query; <c>Entities</c> are the candidate fillers of @placeholder, <c>Answers</c> the right ones.</summary>
public sealed record ReCoRDRecord(string Passage, string Query, IReadOnlyList<string> Entities, IReadOnlyList<string> Answers);

/// <summary>SQuAD v1.1: every gold answer text, the first one being the training target.</summary>
public sealed record SquadRecord(string Title, string Context, string Question, IReadOnlyList<string> Answers);

/// <summary>DROP: every gold answer as text (a number, a date, or the spans joined by ", "), the first one being the training target.</summary>
public sealed record DropRecord(string Passage, string Question, IReadOnlyList<string> Answers);
