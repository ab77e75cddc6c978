using ChainLora.Tasks;

namespace ChainLora.Tests.Tasks;

/// <summary>Readers on small files written here: official layouts, Hugging Face exports, and malformed rows.</summary>
public sealed class ReaderTests : TempFolderTest
{

    static InvalidDataException LoadFails(string task, string dir) =>
        Assert.Throws<InvalidDataException>(() => TaskData.Load(TaskRegistry.Find(task), dir));

    [Fact]
    public void A_line_that_is_not_json_is_named_with_file_and_line()
    {
        var file = Write("rte/train.jsonl", """
            {"premise": "A.", "hypothesis": "B.", "label": "entailment"}
            {"premise": "A.", "hypothesis": 
            """);
        Write("rte/val.jsonl", """{"premise": "A.", "hypothesis": "B.", "label": "entailment"}""");
        var e = LoadFails("rte", Path.Combine(Temp.FullName, "rte"));
        Assert.Contains($"{file}:2:", e.Message);
        Assert.Contains("not valid JSON", e.Message);
    }

    [Theory]
    [InlineData("rte", """{"premise": "A.", "label": "entailment"}""", "field 'hypothesis': missing")]
    [InlineData("rte", """{"premise": "A.", "hypothesis": "B.", "label": "maybe"}""", "field 'label': expected one of entailment, not_entailment")]
    [InlineData("cb", """{"premise": "A.", "hypothesis": "B.", "label": 3}""", "field 'label'")]
    [InlineData("boolq", """{"passage": "A.", "question": "is it", "label": "yes"}""", "field 'label': expected true or false")]
    [InlineData("copa", """{"premise": "A.", "choice1": "B.", "choice2": "C.", "question": "why", "label": 0}""", "field 'question'")]
    [InlineData("wsc", """{"text": "He ran.", "target": {"span1_text": "Tom"}, "label": true}""", "field 'target.span2_text': missing")]
    [InlineData("multirc", """{"passage": {"text": "P.", "questions": [{"question": "Q?", "answers": [{"text": "a", "label": 1}, {"text": "b", "label": "x"}]}]}}""",
        "field 'passage.questions[0].answers[1].label'")]
    [InlineData("record", """{"passage": {"text": "Tom met Ann.", "entities": [{"start": 0, "end": 99}]}, "qas": []}""",
        "field 'passage.entities[0].end'")]
    [InlineData("wic", """{"word": 3, "sentence1": "a", "sentence2": "b", "label": false}""", "field 'word': expected a string, found 3")]
    public void A_malformed_row_is_named_with_file_line_and_field(string task, string badLine, string expected)
    {
        var good = task switch
        {
            "rte" => """{"premise": "A.", "hypothesis": "B.", "label": "entailment"}""",
            "cb" => """{"premise": "A.", "hypothesis": "B.", "label": "neutral"}""",
            "boolq" => """{"passage": "A.", "question": "is it", "label": true}""",
            "copa" => """{"premise": "A.", "choice1": "B.", "choice2": "C.", "question": "cause", "label": 0}""",
            "wsc" => """{"text": "He ran.", "target": {"span1_text": "Tom", "span2_text": "He"}, "label": true}""",
            "multirc" => """{"passage": {"text": "P.", "questions": [{"question": "Q?", "answers": [{"text": "a", "label": 1}]}]}}""",
            "record" => """{"passage": {"text": "Tom met Ann.", "entities": [{"start": 0, "end": 2}]}, "qas": [{"query": "@placeholder left.", "answers": [{"text": "Tom"}]}]}""",
            "wic" => """{"word": "w", "sentence1": "a", "sentence2": "b", "label": false}""",
            _ => throw new ArgumentException(task),
        };
        var file = Write($"{task}/val.jsonl", good + "\n\n" + good + "\n" + badLine + "\n");
        var e = LoadFails(task, Path.Combine(Temp.FullName, task));
        Assert.Contains($"{file}:4: {expected}", e.Message);
    }

    [Fact]
    public void Glue_tsv_with_a_labelled_test_file_evaluates_on_it_and_trains_on_train_plus_dev()
    {
        Write("sst2/train.tsv", "sentence\tlabel\ngood film \t1\nbad film \t0\n");
        Write("sst2/dev.tsv", "sentence\tlabel\nfine film \t1\n");
        Write("sst2/test.tsv", "sentence\tlabel\nawful film \t0\n");
        var pools = TaskData.Load(TaskRegistry.Find("SST2"), Path.Combine(Temp.FullName, "sst2"));
        Assert.Equal(["good film It was", "bad film It was", "fine film It was"], pools.Train.Select(e => e.Prompt));
        Assert.Equal("awful film It was", Assert.Single(pools.Validation).Prompt);

        // GLUE's own test.tsv has no labels: then dev is the validation split.
        Write("sst2/test.tsv", "index\tsentence\n0\tsome film\n");
        pools = TaskData.Load(TaskRegistry.Find("sst2"), Path.Combine(Temp.FullName, "sst2"));
        Assert.Equal(2, pools.Train.Count);
        Assert.Equal("fine film It was", Assert.Single(pools.Validation).Prompt);
    }

    [Fact]
    public void Glue_tsv_errors_name_the_line()
    {
        var file = Write("sst2/train.tsv", "sentence\tlabel\ngood\t1\nbad\t0\textra\n");
        Write("sst2/dev.tsv", "sentence\tlabel\nfine\t7\n");
        var e = LoadFails("sst2", Path.Combine(Temp.FullName, "sst2"));
        Assert.Contains($"{file}:3: expected 2 tab-separated fields (sentence, label), found 3", e.Message);
        File.WriteAllText(file, "sentence\tlabel\ngood\t1\n");
        e = LoadFails("sst2", Path.Combine(Temp.FullName, "sst2"));
        Assert.Contains("dev.tsv:2: field 'label'", e.Message);
    }

    [Fact]
    public void A_tsv_header_naming_a_column_twice_is_refused_naming_the_file_and_column()
    {
        // Read as it was, the row's last "label" cell would win silently and the model would train on it.
        var file = Write("sst2/train.tsv", "sentence\tlabel\tlabel\ngood film\t1\t0\n");
        Write("sst2/dev.tsv", "sentence\tlabel\nfine film\t1\n");
        var e = LoadFails("sst2", Path.Combine(Temp.FullName, "sst2"));
        Assert.Contains($"{file}:1: column 'label' appears twice in the header", e.Message);
    }

    [Fact]
    public void Squad_official_files_of_one_split_are_read_together_in_name_order()
    {
        static string Doc(string title, string question, string answer) => $$"""
            {"version": "1.1", "data": [{"title": "{{title}}", "paragraphs": [{"context": "Context of {{title}}.",
              "qas": [{"id": "1", "question": "{{question}}", "answers": [{"answer_start": 0, "text": "{{answer}}"}, {"answer_start": 0, "text": "{{answer}}s"}]}]}]}]}
            """;
        Write("squad/train-pool-v1.1.json", Doc("T", "Train q?", "x"));
        Write("squad/dev-v1.1-part2.json", Doc("B", "Second?", "b"));
        Write("squad/dev-v1.1-part1.json", Doc("A", "First?", "a"));
        var pools = TaskData.Load(TaskRegistry.Find("squad"), Path.Combine(Temp.FullName, "squad"));
        Assert.Single(pools.Train);
        var validation = pools.Validation.Cast<AnswerExample>().ToList();
        Assert.Equal(["Title: A\nContext: Context of A.\nQuestion: First?\nAnswer:", "Title: B\nContext: Context of B.\nQuestion: Second?\nAnswer:"],
            validation.Select(e => e.Prompt));
        Assert.Equal(" a\n", validation[0].Target);
        Assert.Equal(["a", "as"], validation[0].Answers);
    }

    [Fact]
    public void Squad_errors_name_the_json_path()
    {
        var file = Write("squad/dev-v1.1.json", """{"data": [{"title": "T", "paragraphs": [{"context": "C", "qas": [{"question": "Q?", "answers": []}]}]}]}""");
        var e = LoadFails("squad", Path.Combine(Temp.FullName, "squad"));
        Assert.Contains($"{file}: field 'data[0].paragraphs[0].qas[0].answers': empty list", e.Message);
    }

    [Fact]
    public void Drop_official_layout_gives_numbers_dates_and_spans_as_answers()
    {
        Write("drop/drop_dataset_train.json", """
            {"nfl_1": {"passage": "The Bears scored 3 touchdowns.", "qa_pairs": [
                {"question": "How many touchdowns? ", "query_id": "q1",
                 "answer": {"number": "3", "date": {"day": "", "month": "", "year": ""}, "spans": []}}]}}
            """);
        Write("drop/drop_dataset_dev.json", """
            {"hist_1": {"passage": "Smith and Jones were born on 5 May 2000.", "qa_pairs": [
                {"question": "When were they born?", "query_id": "q2",
                 "answer": {"number": "", "date": {"day": "5", "month": "May", "year": "2000"}, "spans": []},
                 "validated_answers": [{"number": "", "date": {"day": "", "month": "May", "year": "2000"}, "spans": []}]},
                {"question": "Who was born?", "query_id": "q3",
                 "answer": {"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["Smith", "Jones"]}}]},
             "hist_2": {"passage": "It took 12 years.", "qa_pairs": [
                {"question": "How long?", "answer": {"number": 12, "spans": []}}]}}
            """);
        var pools = TaskData.Load(TaskRegistry.Find("drop"), Path.Combine(Temp.FullName, "drop"));
        var train = Assert.IsType<AnswerExample>(Assert.Single(pools.Train));
        Assert.Equal("Passage: The Bears scored 3 touchdowns.\nQuestion: How many touchdowns?\nAnswer:", train.Prompt);
        Assert.Equal(" 3\n", train.Target);
        var validation = pools.Validation.Cast<AnswerExample>().ToList();
        Assert.Equal(["5 May 2000", "May 2000"], validation[0].Answers);
        Assert.Equal(["Smith, Jones"], validation[1].Answers);
        Assert.Equal(["12"], validation[2].Answers);
    }

    [Fact]
    public void Drop_errors_name_the_passage_and_question()
    {
        var file = Write("drop/drop_dataset_dev.json", """{"nfl_7": {"passage": "P.", "qa_pairs": [{"question": "Q?", "answer": {"spans": "x"}}]}}""");
        var e = LoadFails("drop", Path.Combine(Temp.FullName, "drop"));
        Assert.Contains($"{file}: field 'nfl_7.qa_pairs[0].answer.spans': expected a list", e.Message);
    }

    [Fact]
    public void Full_record_layout_gives_one_example_per_query_with_entities_from_spans()
    {
        // SuperGLUE ReCoRD: entity spans are inclusive character offsets into the passage.
        const string passage = "Tom met Ann in Paris.\n@highlight\nAnn likes Paris";
        Write("ReCoRD/train.jsonl", $$"""
            {"idx": 0, "passage": {"text": {{System.Text.Json.JsonSerializer.Serialize(passage)}}, "entities": [{"start": 0, "end": 2}, {"start": 8, "end": 10}, {"start": 15, "end": 19}, {"start": 33, "end": 35}]},
             "qas": [{"query": "@placeholder loves Paris.", "answers": [{"start": 8, "end": 10, "text": "Ann"}], "idx": 0},
                     {"query": "They met in @placeholder.", "answers": [{"start": 15, "end": 19, "text": "Paris"}], "idx": 1}]}
            """.ReplaceLineEndings(" "));
        Write("ReCoRD/val.jsonl", """{"passage": "Bo ran.", "query": "@placeholder ran.", "entities": ["Bo", "Al"], "answers": ["Bo"]}""");
        var pools = TaskData.Load(TaskRegistry.Find("record"), Path.Combine(Temp.FullName, "ReCoRD"));
        var train = pools.Train.Cast<ChoiceExample>().ToList();
        Assert.Equal(2, train.Count);
        Assert.Equal("Tom met Ann in Paris.\n- Ann likes Paris\n-", train[0].Prompt);
        Assert.Equal([" Tom loves Paris.", " Ann loves Paris.", " Paris loves Paris."], train[0].Options);
        Assert.Equal([1], train[0].Correct);
        Assert.Equal([2], train[1].Correct);
        var validation = Assert.IsType<ChoiceExample>(Assert.Single(pools.Validation));   // Hugging Face layout
        Assert.Equal([" Bo ran.", " Al ran."], validation.Options);
        Assert.Equal([0], validation.Correct);
    }

    [Fact]
    public void Hugging_face_jsonl_layouts_read_like_the_official_ones()
    {
        Write("wsc/train.jsonl", """{"text": "He ran.", "span1_index": 0, "span2_index": 0, "span1_text": "Tom", "span2_text": "He", "idx": 0, "label": 1}""");
        Write("wsc/validation.jsonl", """{"text": "He ran.", "span1_text": "Tom", "span2_text": "He", "idx": 0, "label": 0}""");
        var wsc = TaskData.Load(TaskRegistry.Find("wsc"), Path.Combine(Temp.FullName, "wsc"));
        Assert.Equal(1, ((ChoiceExample)wsc.Train[0]).Label);
        Assert.Equal(0, ((ChoiceExample)wsc.Validation[0]).Label);

        Write("multirc/train.jsonl", """{"paragraph": "P.", "question": "Q?", "answer": "A", "idx": {"paragraph": 0, "question": 0, "answer": 0}, "label": 1}""");
        Write("multirc/validation.jsonl", """{"paragraph": "P.", "question": "Q?", "answer": "B", "label": 0}""");
        Assert.Equal(2, TaskData.Load(TaskRegistry.Find("multirc"), Path.Combine(Temp.FullName, "multirc")).Train.Count
            + TaskData.Load(TaskRegistry.Find("multirc"), Path.Combine(Temp.FullName, "multirc")).Validation.Count);

        Write("squad/train.jsonl", """{"id": "1", "title": "T", "context": "C.", "question": "Q?", "answers": {"text": ["a", "b"], "answer_start": [0, 0]}}""");
        Write("squad/validation.jsonl", """{"id": "2", "title": "T", "context": "C.", "question": "R?", "answers": {"text": ["c"], "answer_start": [0]}}""");
        var squad = TaskData.Load(TaskRegistry.Find("squad"), Path.Combine(Temp.FullName, "squad"));
        Assert.Equal(["a", "b"], ((AnswerExample)squad.Train[0]).Answers);

        Write("drop/train.jsonl", """{"section_id": "s", "query_id": "q", "passage": "P.", "question": "Who?", "answers_spans": {"spans": ["Smith", "Jones"], "types": ["span", "span"]}}""");
        Write("drop/validation.jsonl", """{"section_id": "s", "query_id": "r", "passage": "P.", "question": "How many?", "answers_spans": {"spans": ["4"], "types": ["number"]}}""");
        var drop = TaskData.Load(TaskRegistry.Find("drop"), Path.Combine(Temp.FullName, "drop"));
        Assert.Equal(" Smith, Jones\n", ((AnswerExample)drop.Train[0]).Target);
    }

    static readonly string[] Rte = ["premise", "hypothesis", "idx", "label"];

    /// <summary>RTE rows in Hugging Face's layout: premise, hypothesis, an int32 idx and an int64 label.</summary>
    static void WriteRte(string path, params (string Premise, string Hypothesis, long Label)[] rows) =>
        ParquetFiles.Write(path,
            (Rte[0], ParquetFiles.Strings([.. rows.Select(r => r.Premise)])),
            (Rte[1], ParquetFiles.Strings([.. rows.Select(r => r.Hypothesis)])),
            (Rte[2], ParquetFiles.Ints([.. rows.Select((_, i) => i)])),
            (Rte[3], ParquetFiles.Longs([.. rows.Select(r => r.Label)])));

    [Fact]
    public void Hugging_face_parquet_snapshots_are_found_in_split_folders_and_read()
    {
        var root = Path.Combine(Temp.FullName, "rte-hf");
        WriteRte(Path.Combine(root, "default", "train", "0000.parquet"), ("A.", "B.", 0), ("C.", "D.", 1));
        WriteRte(Path.Combine(root, "default", "validation", "0000.parquet"), ("E.", "F.", 1));
        var pools = TaskData.Load(TaskRegistry.Find("rte"), root);
        Assert.Equal([0, 1], pools.Train.Cast<ChoiceExample>().Select(e => e.Label));
        Assert.Equal("E.\nDoes this mean that \"F.\" is true? Yes or No?\n", Assert.Single(pools.Validation).Prompt);

        // Lists of strings (ReCoRD's entities and answers).
        var record = Path.Combine(Temp.FullName, "record-hf", "data");
        void WriteRecord(string file, string passage, string query, string answer) =>
            ParquetFiles.Write(Path.Combine(record, file),
                ("passage", ParquetFiles.Strings(passage)), ("query", ParquetFiles.Strings(query)),
                ("entities", ParquetFiles.StringLists(["Bo", "Al"])), ("answers", ParquetFiles.StringLists([answer])));
        WriteRecord("train-00000-of-00001.parquet", "Bo ran.", "@placeholder ran.", "Bo");
        WriteRecord("validation-00000-of-00001.parquet", "Al sat.", "@placeholder sat.", "Al");
        var recordPools = TaskData.Load(TaskRegistry.Find("record"), Path.GetDirectoryName(record)!);
        Assert.Equal([1], ((ChoiceExample)recordPools.Validation[0]).Correct);

        // A struct of lists (DROP's answers_spans).
        var drop = Path.Combine(Temp.FullName, "drop-hf", "data");
        void WriteDrop(string file, string[] spans) =>
            ParquetFiles.Write(Path.Combine(drop, file),
                ("section_id", ParquetFiles.Strings("s")), ("query_id", ParquetFiles.Strings("q")),
                ("passage", ParquetFiles.Strings("P.")), ("question", ParquetFiles.Strings("Who?")),
                ("answers_spans", ParquetFiles.Struct(("spans", ParquetFiles.StringLists(spans)), ("types", ParquetFiles.StringLists([.. spans.Select(_ => "span")])))));
        WriteDrop("train-00000-of-00001.parquet", ["Smith", "Jones"]);
        WriteDrop("validation-00000-of-00001.parquet", ["4"]);
        var dropPools = TaskData.Load(TaskRegistry.Find("drop"), Path.GetDirectoryName(drop)!);
        Assert.Equal(" Smith, Jones\n", ((AnswerExample)dropPools.Train[0]).Target);
    }

    [Fact]
    public void Parquet_errors_name_the_row_and_field()
    {
        var root = Path.Combine(Temp.FullName, "rte-bad");
        var file = Path.Combine(root, "validation.parquet");
        WriteRte(file, ("A.", "B.", 0), ("C.", "D.", -1));
        var e = LoadFails("rte", root);
        Assert.Contains($"{file}: row 2: field 'label'", e.Message);
    }

    [Fact]
    public void A_parquet_file_that_is_not_one_is_refused_naming_it()
    {
        var root = Path.Combine(Temp.FullName, "rte-damaged");
        var file = Path.Combine(root, "train.parquet");
        WriteRte(file, ("A.", "B.", 0));
        File.WriteAllBytes(file, File.ReadAllBytes(file)[..^12]); // the footer's length and magic cut off
        var e = LoadFails("rte", root);
        Assert.StartsWith($"{file}: not a readable parquet file", e.Message);
    }

    [Fact]
    public void A_parquet_footer_that_looped_the_old_reader_is_refused_at_once()
    {
        // Two footer bytes of a valid file changed (a list length among them): Parquet.Net 6.1 spun on
        // it forever, so the reader gave up after 10 s and left that thread spinning in the process.
        var root = Path.Combine(Temp.FullName, "sst2-damaged");
        var file = Path.Combine(root, "train.parquet");
        Directory.CreateDirectory(root);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "parquet", "parquet-net-loops.parquet"), file);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = LoadFails("sst2", root);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"refused after {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal($"{file}: not a readable parquet file: IOError: Couldn't deserialize thrift: No more data to read.", e.Message);
    }

    [Fact]
    public void Data_above_a_task_folder_is_refused_and_an_empty_folder_is_named()
    {
        Write("superglue/CB/train.jsonl", """{"premise": "A.", "hypothesis": "B.", "label": "neutral"}""");
        Write("superglue/RTE/train.jsonl", """{"premise": "A.", "hypothesis": "B.", "label": "entailment"}""");
        var e = LoadFails("cb", Path.Combine(Temp.FullName, "superglue"));
        Assert.Contains("point --data at one task's folder", e.Message);
        var empty = Directory.CreateDirectory(Path.Combine(Temp.FullName, "nothing")).FullName;
        var missing = Assert.Throws<FileNotFoundException>(() => TaskData.Load(TaskRegistry.Find("cb"), empty));
        Assert.Contains(empty, missing.Message);
        Assert.Throws<DirectoryNotFoundException>(() => TaskData.Load(TaskRegistry.Find("cb"), Path.Combine(Temp.FullName, "absent")));
    }

    [Theory]
    [InlineData("train32.jsonl", Split.Train)]
    [InlineData("dev32.jsonl", Split.Validation)]
    [InlineData("dev-v1.1-part1.json", Split.Validation)]
    [InlineData("train-pool-v1.1.json", Split.Train)]
    [InlineData("drop_dataset_dev.json", Split.Validation)]
    [InlineData("validation-00000-of-00001.parquet", Split.Validation)]
    [InlineData("val.jsonl", Split.Validation)]
    [InlineData("test.tsv", Split.Test)]
    [InlineData("default/train/0000.parquet", Split.Train)]
    [InlineData("notes.jsonl", null)]
    public void Split_is_read_from_the_file_name_or_its_folder(string relative, Split? expected) =>
        Assert.Equal(expected, DataFiles.SplitOf(Path.Combine("/data/task", relative), "/data/task"));

    [Fact]
    public void A_single_text_is_split_at_a_line_break_and_a_folder_reads_train_and_val()
    {
        var text = string.Concat(Enumerable.Range(0, 20).Select(i => $"line {i}\n"));
        var file = Write("corpus.txt", text);
        var corpus = TextCorpus.Load(file);
        Assert.Equal(text, corpus.Train + corpus.Validation);
        Assert.EndsWith("\n", corpus.Train);
        Assert.Equal("line 18\nline 19\n", corpus.Validation);
        Write("lm/train.txt", "to be\n");
        Write("lm/val.txt", "or not\n");
        var folder = TextCorpus.Load(Path.Combine(Temp.FullName, "lm"));
        Assert.Equal(("to be\n", "or not\n"), (folder.Train, folder.Validation));
        Assert.Throws<FileNotFoundException>(() => TextCorpus.Load(Path.Combine(Temp.FullName, "ReCoRD-none")));
    }

    [Fact]
    public void A_contiguous_split_cuts_train_dev_and_test_in_the_texts_order_and_keeps_the_old_test()
    {
        // 90 lines of 8 characters: the 90% cut falls after line 80 (character 648), the 8/9 cut of
        // those 648 characters after line 71 (character 576).
        static string Lines(int from, int to) => string.Concat(Enumerable.Range(from, to - from).Select(i => $"line {i:D2}\n"));
        var file = Write("corpus.txt", Lines(0, 90));
        var old = TextCorpus.Load(file);
        var corpus = TextCorpus.Load(file, TextSplit.Contiguous);
        Assert.Equal((Lines(0, 72), Lines(72, 81), Lines(81, 90)), (corpus.Train, corpus.Dev, corpus.Validation));
        Assert.Equal(old.Validation, corpus.Validation);
        Assert.Null(old.Dev);
        Assert.Equal("corpus.txt characters [0, 576) train, [576, 648) dev; corpus.txt characters [648, 720) test", corpus.Regions);

        // A folder: train.txt gives train and dev, val.txt stays test.
        Write("lm/train.txt", Lines(0, 18));
        Write("lm/val.txt", Lines(50, 52));
        var folder = TextCorpus.Load(Path.Combine(Temp.FullName, "lm"), TextSplit.Contiguous);
        Assert.Equal((Lines(0, 16), Lines(16, 18), Lines(50, 52)), (folder.Train, folder.Dev, folder.Validation));
        Assert.Equal("train.txt characters [0, 128) train, [128, 144) dev; val.txt characters [0, 16) test", folder.Regions);
    }
}
