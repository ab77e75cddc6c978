using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.IO;

namespace ChainLora.Models;

/// <summary>Reads Hugging Face <c>config.json</c> files into the immutable config records.</summary>
public static class ConfigJson
{
    static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowReadingFromString,
        WriteIndented = true,
    };

    /// <summary>The "model_type" field of a config.json ("llama", "opt", ...).</summary>
    public static string ModelType(string path)
    {
        using var doc = Parse(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object, found {doc.RootElement.ValueKind}");
        return doc.RootElement.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : throw new InvalidDataException($"{path}: field 'model_type' is missing");
    }

    public static T Read<T>(string path) where T : class
    {
        return JsonFile.Read<T>(path, Options, "config.json");
    }

    /// <summary><see cref="Read{T}"/> then <paramref name="validate"/>; a bad value is an error naming the file and the field.</summary>
    public static T ReadValid<T>(string path, Func<T, T> validate) where T : class
    {
        var config = Read<T>(path);
        try
        {
            return validate(config);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Fields of a transformers config.json that do not change what a model computes: bookkeeping,
    /// PretrainedConfig's own attributes, and the generation defaults older versions saved there.
    /// </summary>
    public static readonly IReadOnlySet<string> InertFields = new HashSet<string>(StringComparer.Ordinal)
    {
        "_name_or_path", "transformers_version", "dtype", "use_cache", "initializer_range", "auto_map", "tokenizer_class",
        "_attn_implementation", "_attn_implementation_autoset", "attn_implementation", "gradient_checkpointing",
        "output_attentions", "output_hidden_states", "return_dict", "use_return_dict", "torchscript", "use_bfloat16",
        "tf_legacy_loss", "is_decoder", "is_encoder_decoder", "add_cross_attention", "cross_attention_hidden_size",
        "tie_encoder_decoder", "chunk_size_feed_forward", "finetuning_task", "id2label", "label2id", "num_labels",
        "problem_type", "prefix", "task_specific_params", "sep_token_id", "decoder_start_token_id",
        "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty",
        "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
        "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate",
        "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
        "suppress_tokens", "begin_suppress_tokens", "unsloth_version", "unsloth_fixed",
    };

    /// <summary>
    /// Reads <paramref name="path"/> over <paramref name="defaults"/> (the fields the file leaves out keep
    /// their default), refusing by name any field outside <paramref name="fields"/> and
    /// <see cref="InertFields"/>: a field ChainLora does not know might change the maths, so it is never ignored.
    /// </summary>
    public static T ReadStrict<T>(string path, T defaults, IReadOnlySet<string> fields, Func<T, T> validate) where T : class
    {
        using var doc = Parse(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object, found {doc.RootElement.ValueKind}");
        var file = new JsonObject();
        foreach (var field in doc.RootElement.EnumerateObject())
            if (!file.TryAdd(field.Name, JsonNode.Parse(field.Value.GetRawText())))
                throw new InvalidDataException($"{path}: config field '{field.Name}' appears twice");
        foreach (var (key, value) in file)
            if (!fields.Contains(key) && !InertFields.Contains(key))
                throw new InvalidDataException(
                    $"{path}: config field '{key}' = {Shorten(value?.ToJsonString() ?? "null")} is not supported for model_type " +
                    $"'{file["model_type"]}': it may change the model's maths, and ChainLora does not implement it");
        var merged = JsonSerializer.SerializeToNode(defaults, Options)!.AsObject();
        foreach (var (key, value) in file) merged[key] = value?.DeepClone();
        T config;
        try
        {
            config = merged.Deserialize<T>(Options) ?? throw new InvalidDataException($"{path}: empty config");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid config.json ({e.Path}: {e.Message})", e);
        }
        try
        {
            return validate(config);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>A JSON number, for config fields written as they were read (token ids may be an int or a list).</summary>
    public static JsonElement Number(int value) => JsonSerializer.SerializeToElement(value);

    /// <summary>A JSON value on one line, shortened past 80 characters, for error messages.</summary>
    public static string Show(JsonElement value) => Shorten(JsonSerializer.Serialize(value));

    static string Shorten(string json) => json.Length <= 80 ? json : json[..77] + "...";

    public static string Write<T>(T config) => JsonSerializer.Serialize(config, Options);

    static JsonDocument Parse(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config.json not found: {path}", path);
        return JsonFile.Parse(path);
    }

    internal static void Require(bool ok, string field, object? value, string why)
    {
        if (!ok) throw new ArgumentException($"config field '{field}' = {value ?? "null"}: {why}");
    }
}
