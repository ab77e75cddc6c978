// Finds a task folder's split files and reads them as rows. Formats, by extension:
//   .tsv      GLUE: a header row naming the columns, then one example per line (no quoting)
//   .jsonl    one JSON object per line (SuperGLUE; Hugging Face `Dataset.to_json`)
//   .json     SQuAD v1.1 and DROP: the official single document, flattened to one row per question;
//             other tasks: JSON lines (what `Dataset.to_json` writes under that name)
//   .parquet  Hugging Face exports, one row per example (Apache Arrow's reader, through ParquetSharp)
// Splits come from file names: a name whose words include "train", "dev"/"val"/"validation" or
// "test" (train32.jsonl, dev-v1.1-part1.json, drop_dataset_dev.json, validation-00000-of-00001.parquet),
// or from the folder holding it (Hugging Face's default/train/0000.parquet). Several files of one
// split are read in name order and concatenated (dev-v1.1-part1.json + part2.json).
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Apache.Arrow;
using Apache.Arrow.Types;
using ChainLora.IO;
using ParquetSharp;
using ParquetSharp.Arrow;

namespace ChainLora.Tasks;

public enum Split { Train, Validation, Test }

public static partial class DataFiles
{
    static readonly string[] Extensions = [".tsv", ".jsonl", ".json", ".parquet"];

    /// <summary>
    /// The data files of <paramref name="dir"/> by split: its own files, or when it holds none,
    /// those of its sub-folders (a Hugging Face snapshot). Throws when a split's files sit in
    /// several folders (--data pointing above a task's folder).
    /// </summary>
    public static IReadOnlyDictionary<Split, IReadOnlyList<string>> Find(string dir)
    {
        if (File.Exists(dir))
            throw new ArgumentException($"--data {dir} is a file: point it at the task's folder (only the lm task reads a single file)");
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"data folder not found: {dir}");
        var files = DataFilesIn(dir, SearchOption.TopDirectoryOnly);
        if (files.Count == 0) files = DataFilesIn(dir, SearchOption.AllDirectories);
        var result = new Dictionary<Split, IReadOnlyList<string>>();
        foreach (var group in files.Select(f => (File: f, Split: SplitOf(f, dir))).Where(p => p.Split is not null).GroupBy(p => p.Split!.Value))
        {
            var paths = group.Select(p => p.File).Order(StringComparer.Ordinal).ToList();
            var folders = paths.Select(Path.GetDirectoryName).Distinct().ToList();
            if (folders.Count > 1)
                throw new InvalidDataException(
                    $"{dir}: {group.Key.ToString().ToLowerInvariant()} files in several folders ({string.Join(", ", folders)}): point --data at one task's folder");
            var kinds = paths.Select(KindOf).Distinct().ToList();
            if (kinds.Count > 1)
                throw new InvalidDataException(
                    $"{dir}: {group.Key.ToString().ToLowerInvariant()} split stored twice, as {string.Join(" and ", kinds)} ({string.Join(", ", paths.Select(Path.GetFileName))}): keep one");
            result[group.Key] = paths;
        }
        return result;
    }

    static List<string> DataFilesIn(string dir, SearchOption option) =>
        Directory.EnumerateFiles(dir, "*", option).Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).ToList();

    static string KindOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".jsonl" or ".json" => "json",
        var e => e.TrimStart('.'),
    };

    /// <summary>The split a file name (or, failing that, a folder below <paramref name="root"/>) names.</summary>
    public static Split? SplitOf(string path, string root)
    {
        var folders = Path.GetRelativePath(root, path).Split(Path.DirectorySeparatorChar)[..^1];
        return SplitOfName(Path.GetFileNameWithoutExtension(path))
            ?? folders.Reverse().Select(SplitOfName).FirstOrDefault(s => s is not null);
    }

    static Split? SplitOfName(string name)
    {
        foreach (var word in Words().Split(name.ToLowerInvariant()))
            switch (word)
            {
                case "train": return Split.Train;
                case "dev" or "val" or "validation": return Split.Validation;
                case "test": return Split.Test;
            }
        return null;
    }

    [GeneratedRegex("[^a-z]+")]
    private static partial Regex Words();

    /// <summary>Rows of <paramref name="path"/>; <paramref name="layout"/> decides what a .json file is.</summary>
    public static IEnumerable<JsonRow> ReadRows(string path, DataLayout layout) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".tsv" => ReadTsv(path),
        ".parquet" => ReadParquet(path),
        ".json" when layout == DataLayout.Squad => ReadSquadDocument(path),
        ".json" when layout == DataLayout.Drop => ReadDropDocument(path),
        ".json" or ".jsonl" => ReadJsonLines(path),
        _ => throw new InvalidDataException($"{path}: unsupported data file (expected {string.Join(", ", Extensions)})"),
    };

    /// <summary>A key given twice in one object is an error (not the last one silently winning).</summary>
    static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    public static IEnumerable<JsonRow> ReadJsonLines(string path)
    {
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            JsonNode? node;
            try { node = JsonNode.Parse(line, documentOptions: Strict); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{lineNumber}: not valid JSON: {e.Message}", e); }
            if (node is not JsonObject o) throw new InvalidDataException($"{path}:{lineNumber}: expected a JSON object per line");
            yield return new JsonRow(o, $"{path}:{lineNumber}");
        }
    }

    /// <summary>GLUE tsv: a header naming the columns, then tab-separated cells, no quoting.</summary>
    public static IEnumerable<JsonRow> ReadTsv(string path)
    {
        using var reader = new StreamReader(path);
        var header = reader.ReadLine() ?? throw new InvalidDataException($"{path}: empty file, expected a header row");
        var columns = header.Split('\t').Select(c => c.Trim()).ToArray();
        // Cells go into an object by column name: a second "label" column would silently replace the first.
        if (columns.GroupBy(c => c, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new InvalidDataException($"{path}:1: column '{twice.Key}' appears twice in the header; keep one");
        var lineNumber = 1;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            var cells = line.Split('\t');
            if (cells.Length != columns.Length)
                throw new InvalidDataException(
                    $"{path}:{lineNumber}: expected {columns.Length} tab-separated fields ({string.Join(", ", columns)}), found {cells.Length}");
            var o = new JsonObject();
            for (var i = 0; i < columns.Length; i++) o[columns[i]] = cells[i];
            yield return new JsonRow(o, $"{path}:{lineNumber}");
        }
    }

    /// <summary>The tsv's header names a "label" column (GLUE's own test.tsv files do not).</summary>
    public static bool TsvHasLabels(string path)
    {
        using var reader = new StreamReader(path);
        return (reader.ReadLine() ?? "").Split('\t').Any(c => c.Trim() == "label");
    }

    /// <summary>
    /// Rows of a parquet file, decoded by Apache Arrow's C++ reader (through ParquetSharp), which is
    /// fuzzed upstream and checks the footer's lengths against the file: a damaged file is refused at
    /// once. (Parquet.Net 6.1, used before, looped forever on some damaged footers.)
    /// </summary>
    public static IEnumerable<JsonRow> ReadParquet(string path)
    {
        var rows = new List<JsonRow>();
        try
        {
            using var file = new FileReader(path);
            using var batches = file.GetRecordBatchReader();
            while (batches.ReadNextRecordBatchAsync().AsTask().GetAwaiter().GetResult() is { } batch)
                using (batch)
                    for (var i = 0; i < batch.Length; i++)
                        rows.Add(new JsonRow(Fields(batch.Schema.FieldsList, batch.Arrays, i, path), $"{path}: row {rows.Count + 1}"));
        }
        // Opening reports the C++ reader's error as a ParquetException; reading batches goes through
        // Arrow's C stream interface, whose .NET importer throws a plain Exception with the same text.
        catch (Exception e) when (e is ParquetException || e.GetType() == typeof(Exception))
        {
            throw new InvalidDataException($"{path}: not a readable parquet file: {Reason(e)}", e);
        }
        return rows;
    }

    /// <summary>The C++ reader's text on one line (ParquetSharp wraps it as "&lt;C++ type&gt; (message: '&lt;text&gt;')").</summary>
    static string Reason(Exception e)
    {
        var wrapped = NativeMessage().Match(e.Message);
        return (wrapped.Success ? wrapped.Groups[1].Value : e.Message).Trim().ReplaceLineEndings(" ");
    }

    [GeneratedRegex(@"\(message: '(.*)'\)\s*$", RegexOptions.Singleline)]
    private static partial Regex NativeMessage();

    /// <summary>
    /// Value <paramref name="i"/> of an Arrow column as JSON: what Hugging Face datasets store (strings,
    /// integers, floats, booleans, lists, structs; pandas categoricals as dictionaries), dates and
    /// times as ISO text; another type is refused, naming the column (<paramref name="where"/>).
    /// </summary>
    static JsonNode? ToNode(IArrowArray array, int i, string where) => array.IsNull(i) ? null : array switch
    {
        StringArray a => JsonValue.Create(a.GetString(i)),
        LargeStringArray a => JsonValue.Create(a.GetString(i)),
        StringViewArray a => JsonValue.Create(a.GetString(i)),
        BooleanArray a => JsonValue.Create(a.GetValue(i)),
        Int8Array a => JsonValue.Create(a.GetValue(i)),
        Int16Array a => JsonValue.Create(a.GetValue(i)),
        Int32Array a => JsonValue.Create(a.GetValue(i)),
        Int64Array a => JsonValue.Create(a.GetValue(i)),
        UInt8Array a => JsonValue.Create(a.GetValue(i)),
        UInt16Array a => JsonValue.Create(a.GetValue(i)),
        UInt32Array a => JsonValue.Create(a.GetValue(i)),
        UInt64Array a => JsonValue.Create(a.GetValue(i)),
        FloatArray a => JsonValue.Create(a.GetValue(i)),
        DoubleArray a => JsonValue.Create(a.GetValue(i)),
        Date32Array a => JsonValue.Create(a.GetDateOnly(i)?.ToString("O")),
        Date64Array a => JsonValue.Create(a.GetDateOnly(i)?.ToString("O")),
        TimestampArray a => JsonValue.Create(a.GetTimestamp(i)?.ToString("O")),
        ListArray a => Items(a.GetSlicedValues(i), where),
        LargeListArray a => Items(a.GetSlicedValues(i), where),
        FixedSizeListArray a => Items(a.GetSlicedValues(i), where),
        StructArray a => Fields(((StructType)a.Data.DataType).Fields, a.Fields, i, where),
        DictionaryArray a => ToNode(a.Dictionary, Index(a, i, where), where),
        _ => throw new InvalidDataException($"{where}: values of type {array.Data.DataType.Name} are not read (strings, numbers, booleans, dates, lists and structs are)"),
    };

    /// <summary>Row <paramref name="i"/> of named columns (a row, or a struct's fields) as an object; a name given twice is refused.</summary>
    static JsonObject Fields(IReadOnlyList<Field> fields, IEnumerable<IArrowArray> columns, int i, string where)
    {
        var o = new JsonObject();
        foreach (var (field, column) in fields.Zip(columns))
            if (!o.TryAdd(field.Name, ToNode(column, i, $"{where}: field '{field.Name}'")))
                throw new InvalidDataException($"{where}: field '{field.Name}' appears twice");
        return o;
    }

    static JsonArray Items(IArrowArray values, string where) =>
        new([.. Enumerable.Range(0, values.Length).Select(k => ToNode(values, k, where))]);

    /// <summary>Entry <paramref name="i"/> of a dictionary column's indices, checked against the dictionary.</summary>
    static int Index(DictionaryArray column, int i, string where)
    {
        long index = column.Indices switch
        {
            Int8Array a => a.GetValue(i)!.Value,
            Int16Array a => a.GetValue(i)!.Value,
            Int32Array a => a.GetValue(i)!.Value,
            Int64Array a => a.GetValue(i)!.Value,
            UInt8Array a => a.GetValue(i)!.Value,
            UInt16Array a => a.GetValue(i)!.Value,
            UInt32Array a => a.GetValue(i)!.Value,
            _ => -1,
        };
        if (index < 0 || index >= column.Dictionary.Length)
            throw new InvalidDataException($"{where}: dictionary index {index} is outside its dictionary of {column.Dictionary.Length} values");
        return (int)index;
    }

    /// <summary>SQuAD v1.1: {data: [{title, paragraphs: [{context, qas: [{question, answers, id}]}]}]}, one row per question.</summary>
    public static IEnumerable<JsonRow> ReadSquadDocument(string path)
    {
        var root = new JsonRow(ParseDocument(path), path);
        var articles = root.Objects("data");
        foreach (var article in articles)
        {
            var title = article.String("title");
            foreach (var paragraph in article.Objects("paragraphs"))
            {
                var context = paragraph.String("context");
                foreach (var qa in paragraph.Objects("qas"))
                    yield return qa.With(new() { ["title"] = title, ["context"] = context });
            }
        }
    }

    /// <summary>DROP: {passage_id: {passage, qa_pairs: [{question, answer, validated_answers?}]}}, one row per question.</summary>
    public static IEnumerable<JsonRow> ReadDropDocument(string path)
    {
        var document = ParseDocument(path);
        foreach (var (id, value) in document)
        {
            if (value is not JsonObject entry) throw new InvalidDataException($"{path}: field '{id}': expected an object with passage and qa_pairs");
            var item = new JsonRow(entry, path, id + ".");
            var passage = item.String("passage");
            foreach (var qa in item.Objects("qa_pairs"))
                yield return qa.With(new() { ["passage"] = passage });
        }
    }

    static JsonObject ParseDocument(string path)
    {
        return JsonFile.ParseNode(path, Strict) as JsonObject
            ?? throw new InvalidDataException($"{path}: expected a JSON object at the top level");
    }
}
