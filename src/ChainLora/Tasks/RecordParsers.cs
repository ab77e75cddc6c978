// Rows to task records. Each parser accepts the official release's layout (GLUE tsv, SuperGLUE
// jsonl, SQuAD / DROP json flattened to one row per question by DataFiles) and the Hugging Face
// `datasets` layout of the same task (glue/sst2, super_glue/*, squad, drop), told apart by field names.
namespace ChainLora.Tasks;

public static class RecordParsers
{
    public static readonly IReadOnlyList<string> RteLabels = ["entailment", "not_entailment"];
    public static readonly IReadOnlyList<string> CbLabels = ["entailment", "contradiction", "neutral"];
    public static readonly IReadOnlyList<string> BinaryLabels = ["0", "1"];

    public static IEnumerable<Sst2Record> Sst2(JsonRow row) =>
        [new(row.String("sentence"), row.Label("label", BinaryLabels))];

    public static IEnumerable<RteRecord> Rte(JsonRow row) =>
        [new(row.String("premise"), row.String("hypothesis"), row.Label("label", RteLabels))];

    public static IEnumerable<CbRecord> Cb(JsonRow row) =>
        [new(row.String("premise"), row.String("hypothesis"), row.Label("label", CbLabels))];

    public static IEnumerable<BoolQRecord> BoolQ(JsonRow row)
    {
        var question = row.String("question");
        if (question.Trim().Length == 0) throw row.Error("question", "empty");
        return [new(row.String("passage"), question, row.Bool("label"))];
    }

    /// <summary>SuperGLUE nests the spans under "target"; super_glue/wsc.fixed has them at the top level.</summary>
    public static IEnumerable<WscRecord> Wsc(JsonRow row)
    {
        var spans = row.Has("target") ? row.Object("target") : row;
        return [new(row.String("text"), spans.String("span1_text"), spans.String("span2_text"), row.Bool("label"))];
    }

    public static IEnumerable<WicRecord> Wic(JsonRow row) =>
        [new(row.String("word"), row.String("sentence1"), row.String("sentence2"), row.Bool("label"))];

    /// <summary>SuperGLUE: one row per paragraph with its questions and their answers; Hugging Face: one row per answer.</summary>
    public static IEnumerable<MultiRcRecord> MultiRc(JsonRow row)
    {
        if (!row.Has("passage"))
            return [new(row.String("paragraph"), row.String("question"), row.String("answer"), row.Bool("label"))];
        var passage = row.Object("passage");
        var text = passage.String("text");
        return passage.Objects("questions")
            .SelectMany(q => q.Objects("answers").Select(a => (q, a)))
            .Select(p => new MultiRcRecord(text, p.q.String("question"), p.a.String("text"), p.a.Bool("label")))
            .ToList();
    }

    public static IEnumerable<CopaRecord> Copa(JsonRow row)
    {
        var question = row.String("question");
        if (question is not ("cause" or "effect")) throw row.Error("question", $"expected \"cause\" or \"effect\", found \"{question}\"");
        var premise = row.String("premise");
        if (premise.Trim().Length == 0) throw row.Error("premise", "empty");
        foreach (var choice in new[] { "choice1", "choice2" })
            if (row.String(choice).Trim().Length == 0) throw row.Error(choice, "empty");
        return [new(premise, row.String("choice1"), row.String("choice2"), question, row.Label("label", BinaryLabels))];
    }

    /// <summary>
    /// SuperGLUE: one row per passage, entities as inclusive character spans of the passage, and a
    /// list of queries ("qas") with answers; Hugging Face: one row per query, entities and answers as text.
    /// </summary>
    public static IEnumerable<ReCoRDRecord> ReCoRD(JsonRow row)
    {
        if (row.Has("query"))
            return [new(row.String("passage"), row.String("query"), NonEmpty(row, "entities", row.Strings("entities")),
                NonEmpty(row, "answers", row.Strings("answers")))];
        var passage = row.Object("passage");
        var text = passage.String("text");
        var entities = passage.Objects("entities").Select((e, i) => Span(passage, $"entities[{i}]", e, text)).ToList();
        NonEmpty(passage, "entities", entities);
        return row.Objects("qas").Select(qa =>
        {
            var query = qa.String("query");
            if (!query.Contains("@placeholder")) throw qa.Error("query", "has no @placeholder");
            var answers = qa.Objects("answers").Select(a => a.String("text")).ToList();
            return new ReCoRDRecord(text, query, entities, NonEmpty(qa, "answers", answers));
        }).ToList();
    }

    /// <summary>Official layout (answers: [{text, answer_start}]) or Hugging Face (answers: {text: [..], answer_start: [..]}).</summary>
    public static IEnumerable<SquadRecord> Squad(JsonRow row)
    {
        var answers = row.IsList("answers")
            ? row.Objects("answers").Select(a => a.String("text")).ToList()
            : row.Object("answers").Strings("text");
        return [new(row.String("title"), row.String("context"), row.String("question"), NonEmpty(row, "answers", answers))];
    }

    /// <summary>
    /// Official layout, flattened per question (answer: {number, date{day, month, year}, spans[]},
    /// validated_answers: [..]), or Hugging Face (answers_spans: {spans: [..]}, one answer).
    /// Multi-span answers become one text, the spans joined by ", ".
    /// </summary>
    public static IEnumerable<DropRecord> Drop(JsonRow row)
    {
        List<string> answers;
        if (row.Has("answers_spans"))
            answers = [string.Join(", ", row.Object("answers_spans").Strings("spans"))];
        else
        {
            answers = [DropAnswer(row.Object("answer"))];
            if (row.Has("validated_answers")) answers.AddRange(row.Objects("validated_answers").Select(DropAnswer));
        }
        answers = answers.Where(a => a.Length > 0).Distinct().ToList();
        return [new(row.String("passage"), row.String("question"), NonEmpty(row, "answer", answers))];
    }

    /// <summary>drop_eval.py's answer_json_to_strings: the number if any, else the spans, else the date "day month year".</summary>
    static string DropAnswer(JsonRow answer)
    {
        if (answer.Has("number") && answer.Text("number").Trim() is { Length: > 0 } number) return number;
        if (answer.Has("spans") && answer.Strings("spans") is { Count: > 0 } spans) return string.Join(", ", spans.Select(s => s.Trim()));
        if (!answer.Has("date")) return "";
        var date = answer.Object("date");
        var parts = new[] { "day", "month", "year" }.Where(date.Has).Select(date.Text).Select(p => p.Trim()).Where(p => p.Length > 0);
        return string.Join(" ", parts);
    }

    /// <summary>passage[start..end], end inclusive as in SuperGLUE's ReCoRD.</summary>
    static string Span(JsonRow passage, string field, JsonRow entity, string text)
    {
        var start = entity.Int("start", 0, text.Length - 1);
        var end = entity.Int("end", 0, text.Length - 1);
        if (end < start) throw passage.Error(field, $"end {end} before start {start}");
        return text[start..(end + 1)];
    }

    static IReadOnlyList<string> NonEmpty(JsonRow row, string field, IReadOnlyList<string> values) =>
        values.Count > 0 ? values : throw row.Error(field, "empty list");
}
