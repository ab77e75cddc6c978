// A model with its live LoRA link merged in, written as a Hugging Face checkpoint folder
// (transformers' save_pretrained layout): config.json, model.safetensors or shards + index, and the
// tokenizer files of the source model. It loads with PretrainedModel.Load and with transformers'
// AutoModelForCausalLM.from_pretrained.
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;
using Linear = ChainLora.Models.Linear;

namespace ChainLora.Export;

public sealed record MergedExportOptions
{
    /// <summary>fp32 or bf16; every tensor is written in it (as transformers saves a model loaded in that dtype).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>Shard above this many tensor bytes. 2 GB rather than transformers' 5 GB keeps each file loadable on small hosts.</summary>
    public long MaxShardBytes { get; init; } = 2_000_000_000;
    /// <summary>Replace an output folder holding files no export writes.</summary>
    public bool Overwrite { get; init; }
}

public static class MergedExport
{
    /// <summary>Tokenizer files copied from the source model folder when present.</summary>
    public static readonly IReadOnlyList<string> TokenizerFiles =
    [
        "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja",
    ];
    const string SentencePieceName = "tokenizer.model";

    /// <summary>
    /// The model's parameters under their Hugging Face names, in <paramref name="dtype"/>, with every
    /// live LoRA link merged (W + scaling B A formed in fp32, the model left unchanged) and no LoRA
    /// keys. Tied models have no lm_head.weight, as in their HF checkpoints. Tensors not merged or cast
    /// share storage with the model; dispose the returned handles after use.
    /// </summary>
    public static Dictionary<string, Tensor> MergedWeights(CausalLM model, ScalarType dtype)
    {
        using var _ = no_grad();
        var sidePaths = model.named_modules().Where(m => m.module is LoraLinear).Select(m => m.name + ".").ToList();
        var deltas = new Dictionary<string, List<LoraLinear>>(StringComparer.Ordinal);
        foreach (var (name, module) in model.named_modules())
            if (module is Linear { SidePaths.Count: > 0 } linear)
                deltas[name + ".weight"] = linear.SidePaths.Select(p => p as LoraLinear
                    ?? throw new InvalidOperationException($"'{name}' carries a {p.GetType().Name} side path, which cannot be merged")).ToList();

        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in model.named_parameters())
        {
            if (sidePaths.Any(s => name.StartsWith(s, StringComparison.Ordinal))) continue;
            if (deltas.TryGetValue(name, out var links))
            {
                using var scope = NewDisposeScope();
                var w = p.detach().to(ScalarType.Float32, copy: true);
                foreach (var link in links)
                {
                    if (!link.DeltaIsFinite())
                        throw new InvalidOperationException($"refusing to export: the live LoRA delta of '{name}' is not finite");
                    WeightMerge.AddInPlace(w, link.A, link.B, link.Scaling);
                }
                weights[name] = w.to(dtype).MoveToOuterDisposeScope();
            }
            else weights[name] = p.dtype == dtype ? p.detach() : p.detach().to(dtype);
        }
        return weights;
    }

    /// <summary>
    /// config.json for <paramref name="model"/>: its config record with architectures and torch_dtype,
    /// restricted to the fields its family's transformers config reads (a Llama-derived family keeps its
    /// own: sliding_window, head_dim, rope_scaling, ...; head_dim is written resolved).
    /// </summary>
    public static string ConfigJsonFor(CausalLM model, ScalarType dtype)
    {
        var torchDtype = dtype switch
        {
            ScalarType.Float32 => "float32",
            ScalarType.BFloat16 => "bfloat16",
            _ => throw new ArgumentException($"export dtype {dtype}: expected fp32 or bf16"),
        };
        if (model is LlamaForCausalLM llama)
            return (llama.Config with { TorchDtype = torchDtype, Architectures = [llama.Config.Family.Architecture] }).ToJson();
        if (model is not OptForCausalLM opt) throw new ArgumentException($"no config.json writer for {model.GetType().Name}");
        var config = opt.Config with { TorchDtype = torchDtype, Architectures = ["OPTForCausalLM"] };
        var json = JsonNode.Parse(ConfigJson.Write(config))!.AsObject();
        // Derived read-only properties (head_dim, embed_dim, ...) are not config.json fields.
        foreach (var p in config.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => !p.CanWrite))
            json.Remove(JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name));
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// Writes the merged model into <paramref name="outDir"/>, whole or not at all, with the
    /// tokenizer files of <paramref name="tokenizerDir"/> (a llama2.c folder's SentencePiece
    /// <c>*.model</c> becomes <c>tokenizer.model</c>); null writes no tokenizer (then the folder does
    /// not load with PretrainedModel.Load). <paramref name="cancel"/> stops the write between shards,
    /// leaving <paramref name="outDir"/> as it was.
    /// </summary>
    public static void Save(CausalLM model, string outDir, string? tokenizerDir, MergedExportOptions? options = null,
        CancellationToken cancel = default)
    {
        options ??= new MergedExportOptions();
        var config = ConfigJsonFor(model, options.DType);
        var tokenizer = tokenizerDir is null ? [] : TokenizerSources(tokenizerDir);
        ExportDirectory.Write(outDir, options.Overwrite, temp =>
        {
            var weights = MergedWeights(model, options.DType);
            try
            {
                SafeTensors.SaveSharded(temp, weights, options.MaxShardBytes, new Dictionary<string, string> { ["format"] = "pt" }, cancel);
            }
            finally
            {
                foreach (var t in weights.Values) t.Dispose();
            }
            File.WriteAllText(Path.Combine(temp, "config.json"), config);
            foreach (var (source, name) in tokenizer) File.Copy(source, Path.Combine(temp, name));
        });
    }

    /// <summary>(source file, name in the export) for each tokenizer file of <paramref name="dir"/>.</summary>
    static List<(string Source, string Name)> TokenizerSources(string dir)
    {
        var files = TokenizerFiles.Where(f => File.Exists(Path.Combine(dir, f))).Select(f => (Source: Path.Combine(dir, f), Name: f)).ToList();
        if (!files.Any(f => f.Name == SentencePieceName) && Directory.Exists(dir)
            && Directory.GetFiles(dir, "*.model") is [var sentencePiece])
            files.Add((sentencePiece, SentencePieceName));
        if (files.Count == 0)
            throw new FileNotFoundException($"no tokenizer files in {dir} (looked for {string.Join(", ", TokenizerFiles)}, or one *.model)");
        return files;
    }
}
