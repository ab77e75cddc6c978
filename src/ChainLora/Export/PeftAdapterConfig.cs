// Mirrors PEFT's adapter_config.json for LoRA (peft/tuners/lora/config.py, written by
// PeftConfig.save_pretrained as json.dumps(..., indent=2, sort_keys=True)). Only the fields that
// change what a LoRA adapter computes are modelled; on reading, any other field is ignored.
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChainLora.IO;
using ChainLora.Lora;

namespace ChainLora.Export;

public sealed record PeftAdapterConfig
{
    public const string FileName = "adapter_config.json";

    /// <summary>Default rank; <see cref="RankPattern"/> overrides it per module.</summary>
    public int R { get; init; } = 8;
    public double LoraAlpha { get; init; } = 8;
    public double LoraDropout { get; init; }
    /// <summary>
    /// Module names as PEFT matches them: a module is targeted when its path equals an entry or ends
    /// with "." + entry. Ignored when <see cref="TargetModulesRegex"/> is set.
    /// </summary>
    public IReadOnlyList<string> TargetModules { get; init; } = [];
    /// <summary>target_modules given as one string: a regex that must match the whole module path.</summary>
    public string? TargetModulesRegex { get; init; }
    public LoraBias Bias { get; init; } = LoraBias.None;
    /// <summary>rsLoRA: scale by alpha / sqrt(r). Exports of one rsLoRA link write true; a stacked chain, its scales folded into B, false.</summary>
    public bool UseRsLora { get; init; }
    /// <summary>Module path or regex suffix -> rank, as PEFT's rank_pattern.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();
    /// <summary>Module path or regex suffix -> alpha, as PEFT's alpha_pattern.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();
    public IReadOnlyList<int>? LayersToTransform { get; init; }
    /// <summary>layers_pattern: one name, or several in newer PEFT (written back as it was read).</summary>
    public IReadOnlyList<string>? LayersPattern { get; init; }
    public string? BaseModelNameOrPath { get; init; }
    public string? Revision { get; init; }

    /// <summary>The rank of <paramref name="module"/> (a module path such as "model.layers.0.self_attn.q_proj").</summary>
    public int RankOf(string module) => PatternKey(RankPattern.Keys, module) is { } key ? RankPattern[key] : R;

    public double AlphaOf(string module) => PatternKey(AlphaPattern.Keys, module) is { } key ? AlphaPattern[key] : LoraAlpha;

    /// <summary>The factor applied to B A on <paramref name="module"/>: alpha / r, or alpha / sqrt(r) under rsLoRA.</summary>
    public double ScalingOf(string module)
    {
        double r = RankOf(module), alpha = AlphaOf(module);
        return UseRsLora ? alpha / Math.Sqrt(r) : alpha / r;
    }

    // PEFT's get_pattern_key: the first key equal to the path, or whose regex matches a dotted
    // suffix of it, rf"(.*\.)?({key})$".
    static string? PatternKey(IEnumerable<string> keys, string module) =>
        keys.FirstOrDefault(k => k == module) ?? keys.FirstOrDefault(k => SafeIsMatch(module, $@"^(.*\.)?({k})$"));

    static bool SafeIsMatch(string input, string pattern)
    {
        try { return Regex.IsMatch(input, pattern); }
        catch (ArgumentException) { return false; } // a key that is not a valid regex can only match literally
    }

    /// <summary>Throws naming the field and its bad value.</summary>
    public PeftAdapterConfig Validate(string source)
    {
        if (R < 1) throw new InvalidDataException($"{source}: field 'r' = {R}: must be at least 1");
        if (!(LoraAlpha > 0) || double.IsInfinity(LoraAlpha))
            throw new InvalidDataException($"{source}: field 'lora_alpha' = {LoraAlpha}: must be a positive number");
        if (!(LoraDropout >= 0 && LoraDropout < 1))
            throw new InvalidDataException($"{source}: field 'lora_dropout' = {LoraDropout}: must be in [0, 1)");
        foreach (var (key, rank) in RankPattern)
            if (rank < 1) throw new InvalidDataException($"{source}: rank_pattern['{key}'] = {rank}: must be at least 1");
        foreach (var (key, alpha) in AlphaPattern)
            if (!(alpha > 0) || double.IsInfinity(alpha))
                throw new InvalidDataException($"{source}: alpha_pattern['{key}'] = {alpha}: must be a positive number");
        return this;
    }

    /// <summary>adapter_config.json as PEFT writes it: sorted keys, two-space indent.</summary>
    public string ToJson()
    {
        var fields = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = w => WriteMap(w, AlphaPattern, (w2, v) => w2.WriteNumberValue(v)),
            ["base_model_name_or_path"] = w => WriteStringOrNull(w, BaseModelNameOrPath),
            ["bias"] = w => w.WriteStringValue(EnumNames.Name(Bias)),
            ["fan_in_fan_out"] = w => w.WriteBooleanValue(false),
            ["inference_mode"] = w => w.WriteBooleanValue(true),
            ["init_lora_weights"] = w => w.WriteBooleanValue(true),
            ["layers_pattern"] = w =>
            {
                if (LayersPattern is not { } patterns) w.WriteNullValue();
                else if (patterns.Count == 1) w.WriteStringValue(patterns[0]);
                else WriteStrings(w, patterns);
            },
            ["layers_to_transform"] = w =>
            {
                if (LayersToTransform is null) { w.WriteNullValue(); return; }
                w.WriteStartArray();
                foreach (var l in LayersToTransform) w.WriteNumberValue(l);
                w.WriteEndArray();
            },
            ["lora_alpha"] = w => w.WriteNumberValue(LoraAlpha),
            ["lora_dropout"] = w => w.WriteNumberValue(LoraDropout),
            ["modules_to_save"] = w => w.WriteNullValue(),
            ["peft_type"] = w => w.WriteStringValue("LORA"),
            ["r"] = w => w.WriteNumberValue(R),
            ["rank_pattern"] = w => WriteMap(w, RankPattern, (w2, v) => w2.WriteNumberValue(v)),
            ["revision"] = w => WriteStringOrNull(w, Revision),
            ["target_modules"] = w =>
            {
                if (TargetModulesRegex is not null) { w.WriteStringValue(TargetModulesRegex); return; }
                WriteStrings(w, TargetModules);
            },
            ["task_type"] = w => w.WriteStringValue("CAUSAL_LM"),
            ["use_dora"] = w => w.WriteBooleanValue(false),
            ["use_rslora"] = w => w.WriteBooleanValue(UseRsLora),
        };
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, IndentSize = 2 }))
        {
            w.WriteStartObject();
            foreach (var (name, write) in fields)
            {
                w.WritePropertyName(name);
                write(w);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    static void WriteStringOrNull(Utf8JsonWriter w, string? value)
    {
        if (value is null) w.WriteNullValue();
        else w.WriteStringValue(value);
    }

    static void WriteStrings(Utf8JsonWriter w, IEnumerable<string> values)
    {
        w.WriteStartArray();
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    static void WriteMap<T>(Utf8JsonWriter w, IReadOnlyDictionary<string, T> map, Action<Utf8JsonWriter, T> write)
    {
        w.WriteStartObject();
        foreach (var (key, value) in map.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            w.WritePropertyName(key);
            write(w, value);
        }
        w.WriteEndObject();
    }

    /// <summary>
    /// Reads an adapter_config.json written by PEFT or by us. Refuses what would make the adapter
    /// compute something else here: another peft_type or task, DoRA, fan_in_fan_out (GPT-2's Conv1D),
    /// modules_to_save. Errors name the file and the field.
    /// </summary>
    public static PeftAdapterConfig Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} not found: not a PEFT adapter directory", path);
        using (var doc = JsonFile.Parse(path))
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object");
            var peftType = RequiredString(root, "peft_type", path);
            if (peftType != "LORA") throw new InvalidDataException($"{path}: peft_type '{peftType}': only LORA adapters are supported");
            if (OptionalString(root, "task_type", path) is { } task && task != "CAUSAL_LM")
                throw new InvalidDataException($"{path}: task_type '{task}': only CAUSAL_LM adapters are supported");
            if (OptionalBool(root, "use_dora", path))
                throw new InvalidDataException($"{path}: use_dora is true: DoRA adapters are not supported");
            if (OptionalBool(root, "fan_in_fan_out", path))
                throw new InvalidDataException($"{path}: fan_in_fan_out is true (GPT-2 style Conv1D layers): not supported");
            if (root.TryGetProperty("modules_to_save", out var mts) && mts.ValueKind == JsonValueKind.Array && mts.GetArrayLength() > 0)
                throw new InvalidDataException($"{path}: modules_to_save {mts.GetRawText()}: fully trained extra modules are not supported");

            var target = Required(root, "target_modules", path);
            var (targets, regex) = target.ValueKind switch
            {
                JsonValueKind.String => ((IReadOnlyList<string>)[], target.GetString()),
                JsonValueKind.Array => (target.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String ? t.GetString()!
                    : throw new InvalidDataException($"{path}: field 'target_modules' holds {t.GetRawText()}, expected module names")).ToList(), null),
                _ => throw new InvalidDataException($"{path}: field 'target_modules' is a JSON {target.ValueKind}, expected a list of module names or a regex"),
            };
            var bias = OptionalString(root, "bias", path) ?? "none";
            return new PeftAdapterConfig
            {
                R = RequiredInt(root, "r", path),
                LoraAlpha = RequiredNumber(root, "lora_alpha", path),
                LoraDropout = root.TryGetProperty("lora_dropout", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetDouble() : 0,
                TargetModules = targets,
                TargetModulesRegex = regex,
                Bias = EnumNames.TryParse<LoraBias>(bias, out var b) ? b
                    : throw new InvalidDataException($"{path}: field 'bias' = '{bias}': expected {EnumNames.Choices<LoraBias>()}"),
                UseRsLora = OptionalBool(root, "use_rslora", path),
                RankPattern = Map(root, "rank_pattern", path, v => v.TryGetInt32(out var i) ? i : (int?)null),
                AlphaPattern = Map(root, "alpha_pattern", path, v => (double?)v.GetDouble()),
                LayersToTransform = root.TryGetProperty("layers_to_transform", out var l) ? l.ValueKind switch
                {
                    JsonValueKind.Number => [l.GetInt32()],
                    JsonValueKind.Array => l.EnumerateArray().Select(x => x.GetInt32()).ToList(),
                    _ => null,
                } : null,
                LayersPattern = root.TryGetProperty("layers_pattern", out var lp) ? lp.ValueKind switch
                {
                    JsonValueKind.String => [lp.GetString()!],
                    JsonValueKind.Array => lp.EnumerateArray().Select(x => x.GetString() ?? "").ToList(),
                    _ => null,
                } : null,
                BaseModelNameOrPath = OptionalString(root, "base_model_name_or_path", path),
                Revision = OptionalString(root, "revision", path),
            }.Validate(path);
        }
    }

    static JsonElement Required(JsonElement root, string field, string path) =>
        root.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null
            ? v : throw new InvalidDataException($"{path}: field '{field}' is missing");

    static string RequiredString(JsonElement root, string field, string path) =>
        Required(root, field, path) is { ValueKind: JsonValueKind.String } v
            ? v.GetString()! : throw new InvalidDataException($"{path}: field '{field}' must be a string");

    static int RequiredInt(JsonElement root, string field, string path) =>
        Required(root, field, path) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt32(out var i)
            ? i : throw new InvalidDataException($"{path}: field '{field}' = {root.GetProperty(field).GetRawText()}: expected an integer");

    static double RequiredNumber(JsonElement root, string field, string path) =>
        Required(root, field, path) is { ValueKind: JsonValueKind.Number } v
            ? v.GetDouble() : throw new InvalidDataException($"{path}: field '{field}' = {root.GetProperty(field).GetRawText()}: expected a number");

    // Fields later PEFT versions added may be absent or null in older files: both mean the default.
    static string? OptionalString(JsonElement root, string field, string path) =>
        !root.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString()
            : throw new InvalidDataException($"{path}: field '{field}' = {v.GetRawText()}: expected a string");

    static bool OptionalBool(JsonElement root, string field, string path) =>
        root.TryGetProperty(field, out var v) && v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False or JsonValueKind.Null => false,
            _ => throw new InvalidDataException($"{path}: field '{field}' = {v.GetRawText()}: expected true or false"),
        };

    static Dictionary<string, T> Map<T>(JsonElement root, string field, string path, Func<JsonElement, T?> read) where T : struct
    {
        var map = new Dictionary<string, T>(StringComparer.Ordinal);
        if (!root.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return map;
        if (v.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: field '{field}' must be an object");
        foreach (var p in v.EnumerateObject())
            map[p.Name] = p.Value.ValueKind == JsonValueKind.Number && read(p.Value) is { } value ? value
                : throw new InvalidDataException($"{path}: {field}['{p.Name}'] = {p.Value.GetRawText()}: expected a number");
        return map;
    }
}
