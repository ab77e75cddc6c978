// A user's own instruction or chat data for supervised fine-tuning, in the layouts that TRL, axolotl
// and LLaMA-Factory read, detected per file from its first row:
//   messages       {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   conversations  ShareGPT: {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]}
//   prompt/completion  {"prompt": "...", "completion": "..."}, or each a list of messages (TRL's
//                  conversational prompt-completion)
//   alpaca         {"instruction", "input"?, "output", "system"?}: a user turn of the instruction and,
//                  when not empty, the input on the next line (as LLaMA-Factory joins them), then the
//                  assistant's output
//   text           {"text": "..."}: plain text, every token trained on
// Files are .jsonl (a JSON object per line), .json (a JSON array of objects, as alpaca_data.json,
// or JSON lines) and .parquet. Every error names the file, the line (a parquet row, a JSON array's
// item with its line) and the field.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ChainLora.Tasks;

public enum SftLayout { Messages, Conversations, PromptCompletion, Alpaca, Text }

/// <summary>One turn of a conversation: role system, user or assistant, and its text.</summary>
public sealed record SftTurn(string Role, string Content)
{
    public const string System = "system", User = "user", Assistant = "assistant";
}

/// <summary>
/// One training example. A conversation (<see cref="Turns"/>: every layout but plain prompt/completion
/// strings and text) is rendered by the model's chat template; <see cref="Prompt"/> + <see cref="Completion"/>
/// is plain text whose completion carries the loss; <see cref="Text"/> is trained on whole.
/// </summary>
public sealed record SftExample(SftLayout Layout, string Location, IReadOnlyList<SftTurn>? Turns = null,
    string? Prompt = null, string? Completion = null, string? Text = null)
{
    /// <summary>Whether the model's chat template renders this example (a list of turns).</summary>
    public bool IsConversation => Turns is not null;
}

public static class SftData
{
    static readonly string[] Extensions = [".jsonl", ".json", ".parquet"];

    /// <summary>
    /// The examples of <paramref name="fileOrFolder"/> by split: a folder's train, validation and test
    /// files (named as for the other tasks; several files of a split are read in name order, each in
    /// its own layout), or one file, all of it the train pool (the seeded split then carves dev and
    /// test from it, as for a task with one labelled split).
    /// </summary>
    public static IReadOnlyDictionary<Split, IReadOnlyList<SftExample>> Read(string fileOrFolder)
    {
        if (File.Exists(fileOrFolder)) return new Dictionary<Split, IReadOnlyList<SftExample>> { [Split.Train] = ReadFile(fileOrFolder) };
        if (!Directory.Exists(fileOrFolder)) throw new FileNotFoundException($"--data not found: {fileOrFolder}");
        var splits = DataFiles.Find(fileOrFolder);
        if (splits.Count == 0)
            throw new InvalidDataException($"{fileOrFolder}: no train, validation or test files ({string.Join(", ", Extensions)}) in it");
        return splits.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<SftExample>)[.. kv.Value.SelectMany(ReadFile)]);
    }

    /// <summary>The examples of one file, its layout detected from its first row.</summary>
    public static IReadOnlyList<SftExample> ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--data file not found: {path}");
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (!Extensions.Contains(extension))
            throw new InvalidDataException($"{path}: unsupported data file for sft (expected {string.Join(", ", Extensions)})");
        var rows = extension switch
        {
            ".parquet" => DataFiles.ReadParquet(path),
            ".json" when StartsWithArray(path) => ReadJsonArray(path),
            _ => DataFiles.ReadJsonLines(path),
        };
        SftLayout? layout = null;
        var examples = new List<SftExample>();
        foreach (var row in rows)
        {
            layout ??= LayoutOf(row);
            examples.Add(Parse(row, layout.Value));
        }
        if (examples.Count == 0) throw new InvalidDataException($"{path}: no examples");
        return examples;
    }

    /// <summary>
    /// The layout a row is in, by its fields; a row in none of them is refused naming the fields it has
    /// and those each layout needs.
    /// </summary>
    public static SftLayout LayoutOf(JsonRow row)
    {
        if (row.Has("messages")) return SftLayout.Messages;
        if (row.Has("conversations")) return SftLayout.Conversations;
        if (row.Has("prompt") && row.Has("completion")) return SftLayout.PromptCompletion;
        if (row.Has("instruction") && row.Has("output")) return SftLayout.Alpaca;
        if (row.Has("text")) return SftLayout.Text;
        throw new InvalidDataException($"{row.Location}: no sft layout fits this row (fields: {string.Join(", ", row.Fields)}); " +
            "expected messages, conversations (ShareGPT), prompt + completion, instruction + output (Alpaca) or text");
    }

    /// <summary>One row read in <paramref name="layout"/>, the layout of its file's first row.</summary>
    public static SftExample Parse(JsonRow row, SftLayout layout)
    {
        if (LayoutOf(row) is var own && own != layout)
            throw new InvalidDataException($"{row.Location}: this row is in the {Name(own)} layout, the file's first row in the {Name(layout)} layout; keep one layout per file");
        return layout switch
        {
            SftLayout.Messages => Conversation(row, Turns(row, "messages", "role", "content", Roles)),
            SftLayout.Conversations => Conversation(row, Turns(row, "conversations", "from", "value", ShareGptRoles)),
            SftLayout.PromptCompletion => PromptCompletion(row),
            SftLayout.Alpaca => Conversation(row, Alpaca(row)),
            _ => new SftExample(layout, row.Location, Text: NotEmpty(row, "text")),
        };
    }

    public static string Name(SftLayout layout) => layout switch
    {
        SftLayout.Messages => "messages",
        SftLayout.Conversations => "conversations (ShareGPT)",
        SftLayout.PromptCompletion => "prompt/completion",
        SftLayout.Alpaca => "Alpaca (instruction/input/output)",
        _ => "text",
    };

    static readonly Dictionary<string, string> Roles = new(StringComparer.Ordinal)
    {
        ["system"] = SftTurn.System, ["user"] = SftTurn.User, ["assistant"] = SftTurn.Assistant,
    };

    static readonly Dictionary<string, string> ShareGptRoles = new(StringComparer.Ordinal)
    {
        ["system"] = SftTurn.System, ["human"] = SftTurn.User, ["user"] = SftTurn.User, ["gpt"] = SftTurn.Assistant, ["assistant"] = SftTurn.Assistant,
    };

    static List<SftTurn> Turns(JsonRow row, string field, string roleField, string contentField, Dictionary<string, string> roles)
    {
        var items = row.Objects(field);
        if (items.Count == 0) throw row.Error(field, "empty: expected at least one turn");
        return [.. items.Select(item =>
        {
            var role = item.String(roleField);
            return roles.TryGetValue(role, out var known)
                ? new SftTurn(known, item.String(contentField))
                : throw item.Error(roleField, $"'{role}' is not a role here (expected {string.Join(", ", roles.Keys)})");
        })];
    }

    static SftExample Conversation(JsonRow row, List<SftTurn> turns)
    {
        var layout = LayoutOf(row);
        if (!turns.Any(t => t.Role == SftTurn.Assistant))
            throw new InvalidDataException($"{row.Location}: no assistant turn, so nothing to train on");
        if (turns.Skip(1).FirstOrDefault(t => t.Role == SftTurn.System) is not null)
            throw new InvalidDataException($"{row.Location}: a system turn after the first; chat templates take the system prompt first");
        return new SftExample(layout, row.Location, Turns: turns);
    }

    static SftExample PromptCompletion(JsonRow row)
    {
        if (row.IsList("prompt") || row.IsList("completion"))
        {
            // TRL's conversational prompt-completion: the prompt's turns, then the completion's.
            var prompt = Turns(row, "prompt", "role", "content", Roles);
            var completion = Turns(row, "completion", "role", "content", Roles);
            if (completion.Any(t => t.Role != SftTurn.Assistant))
                throw row.Error("completion", "expected assistant turns only");
            return Conversation(row, [.. prompt, .. completion]);
        }
        return new SftExample(SftLayout.PromptCompletion, row.Location, Prompt: row.String("prompt"), Completion: NotEmpty(row, "completion"));
    }

    static List<SftTurn> Alpaca(JsonRow row)
    {
        var turns = new List<SftTurn>();
        if (row.Has("system") && row.String("system").Length > 0) turns.Add(new(SftTurn.System, row.String("system")));
        var input = row.Has("input") ? row.String("input") : "";
        var instruction = row.String("instruction");
        turns.Add(new(SftTurn.User, input.Length == 0 ? instruction : instruction + "\n" + input));
        turns.Add(new(SftTurn.Assistant, NotEmpty(row, "output")));
        return turns;
    }

    static string NotEmpty(JsonRow row, string field)
    {
        var s = row.String(field);
        return s.Length > 0 ? s : throw row.Error(field, "empty: nothing to train on");
    }

    static bool StartsWithArray(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        int c;
        while ((c = reader.Read()) >= 0)
            if (!char.IsWhiteSpace((char)c)) return c == '[';
        return false;
    }

    /// <summary>A .json file holding one array of objects; each item's location is its line.</summary>
    static IEnumerable<JsonRow> ReadJsonArray(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        var items = new List<(long Start, long End)>();
        try
        {
            while (reader.Read())
                if (reader.CurrentDepth == 1 && reader.TokenType is not (JsonTokenType.EndArray or JsonTokenType.EndObject))
                {
                    var start = reader.TokenStartIndex;
                    if (reader.TokenType != JsonTokenType.StartObject)
                        throw new InvalidDataException($"{path}:{LineAt(bytes, start)}: expected a JSON object per item of the array");
                    reader.Skip();
                    items.Add((start, reader.BytesConsumed));
                }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}:{e.LineNumber + 1}: not valid JSON: {e.Message}", e);
        }
        var line = 1;
        long counted = 0;
        foreach (var (start, end) in items)
        {
            for (; counted < start; counted++) if (bytes[counted] == (byte)'\n') line++;
            JsonObject o;
            try { o = (JsonObject)JsonNode.Parse(bytes.AsSpan((int)start, (int)(end - start)), documentOptions: new() { AllowDuplicateProperties = false })!; }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{line}: not valid JSON: {e.Message}", e); }
            yield return new JsonRow(o, $"{path}:{line}");
        }
    }

    static int LineAt(byte[] bytes, long offset) => 1 + bytes.AsSpan(0, (int)offset).Count((byte)'\n');
}
