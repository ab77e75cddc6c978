// Prompt templates and verbalizers of MeZO (Malladi et al. 2023, large_models/templates.py), the
// setup the COLA paper follows (Appendix A.1). Pure functions, pinned by the golden files
// tests/ChainLora.Tests/Approvals/prompts-<task>.txt.
namespace ChainLora.Tasks;

public static class Templates
{
    public static readonly IReadOnlyList<string> Sst2Verbalizer = [" terrible", " great"];
    public static readonly IReadOnlyList<string> YesNo = ["Yes", "No"];
    public static readonly IReadOnlyList<string> NoYes = ["No", "Yes"];
    public static readonly IReadOnlyList<string> YesNoMaybe = ["Yes", "No", "Maybe"];

    public static ChoiceExample Sst2(Sst2Record r) => new($"{r.Sentence.Trim()} It was", Sst2Verbalizer, r.Label);

    public static ChoiceExample Rte(RteRecord r) =>
        new($"{r.Premise}\nDoes this mean that \"{r.Hypothesis}\" is true? Yes or No?\n", YesNo, r.Label);

    public static ChoiceExample Cb(CbRecord r) =>
        new($"Suppose {r.Premise} Can we infer that \"{r.Hypothesis}\"? Yes, No, or Maybe?\n", YesNoMaybe, r.Label);

    /// <summary>The question gets its first letter upper-cased and a "?" when it has none.</summary>
    public static ChoiceExample BoolQ(BoolQRecord r)
    {
        var question = r.Question.Trim();
        if (!question.EndsWith('?')) question += "?";
        question = char.ToUpperInvariant(question[0]) + question[1..];
        return new($"{r.Passage} {question}\n", NoYes, r.Label ? 1 : 0);
    }

    public static ChoiceExample Wsc(WscRecord r) =>
        new($"{r.Text}\nIn the previous sentence, does the pronoun \"{r.Span2Text.ToLowerInvariant()}\" refer to {r.Span1Text}? Yes or No?\n",
            NoYes, r.Label ? 1 : 0);

    public static ChoiceExample Wic(WicRecord r) =>
        new($"Does the word \"{r.Word}\" have the same meaning in these two sentences? Yes, No?\n{r.Sentence1}\n{r.Sentence2}\n",
            NoYes, r.Label ? 1 : 0);

    public static ChoiceExample MultiRc(MultiRcRecord r) =>
        new($"{r.Paragraph}\nQuestion: {r.Question}\nI found this answer \"{r.Answer}\". Is that correct? Yes or No?\n",
            NoYes, r.Label ? 1 : 0);

    /// <summary>
    /// "{premise without its final period} so {effect}" or "... because {cause}"; each choice has its
    /// first word lower-cased unless it is "I" (MeZO lower-cases the whole word, so "NASA ..." gives
    /// "nasa ...", not "nASA ...").
    /// </summary>
    public static ChoiceExample Copa(CopaRecord r)
    {
        var premise = r.Premise.Trim();
        if (premise.EndsWith('.')) premise = premise[..^1];
        var conjunction = r.Question switch
        {
            "effect" => " so",
            "cause" => " because",
            _ => throw new ArgumentException($"COPA question '{r.Question}': expected cause or effect"),
        };
        return new(premise + conjunction, [" " + LowerFirst(r.Choice1.Trim()), " " + LowerFirst(r.Choice2.Trim())], r.Label);
    }

    static string LowerFirst(string choice)
    {
        var space = choice.IndexOf(' ');
        var first = space < 0 ? choice : choice[..space];
        return first == "I" ? choice : first.ToLowerInvariant() + choice[first.Length..];
    }

    /// <summary>
    /// GPT-3's ReCoRD format: the passage with "@highlight\n" turned into "- " bullets, then a new
    /// bullet holding the query with @placeholder filled by each candidate entity. Candidates are the
    /// distinct entities in order of appearance, then any answer that is not among them.
    /// </summary>
    public static ChoiceExample ReCoRD(ReCoRDRecord r)
    {
        var passage = r.Passage.Replace("@highlight\n", "- ");
        var candidates = r.Entities.Concat(r.Answers).Distinct().ToList();
        var answers = r.Answers.ToHashSet();
        var correct = candidates.Select((c, i) => (c, i)).Where(p => answers.Contains(p.c)).Select(p => p.i).ToList();
        return new(passage + "\n-", candidates.Select(c => " " + r.Query.Replace("@placeholder", c)).ToList(), correct);
    }

    public static AnswerExample Squad(SquadRecord r) =>
        new($"Title: {r.Title}\nContext: {r.Context}\nQuestion: {r.Question.Trim()}\nAnswer:", $" {r.Answers[0]}\n", r.Answers);

    public static AnswerExample Drop(DropRecord r) =>
        new($"Passage: {r.Passage}\nQuestion: {r.Question.Trim()}\nAnswer:", $" {r.Answers[0]}\n", r.Answers);
}
