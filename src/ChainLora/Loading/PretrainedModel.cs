// `--model`: a Hugging Face directory (config.json + safetensors or PyTorch .bin weights + tokenizer
// files) or a llama2.c directory (one checkpoint .bin + one SentencePiece .model); or a Hub model
// `org/name[@rev]`, found in (or downloaded into) the Hugging Face cache.
using ChainLora.IO;
using ChainLora.IO.Hub;
using ChainLora.Models;
using ChainLora.Runtime;
using ChainLora.Tokenization;
using static TorchSharp.torch;

namespace ChainLora.Loading;

public enum CheckpointFormat { HuggingFace, Llama2c }

/// <summary>A model with its tokenizer, loaded from a model directory.</summary>
public sealed class PretrainedModel(CausalLM model, ITextTokenizer tokenizer, string directory, CheckpointFormat format) : IDisposable
{
    public CausalLM Model { get; } = model;
    public ITextTokenizer Tokenizer { get; } = tokenizer;
    public string Directory { get; } = directory;
    public CheckpointFormat Format { get; } = format;

    /// <summary>
    /// Loads <paramref name="dir"/>; matrices and embeddings are stored in <paramref name="dtype"/>
    /// (fp32 or bf16), norms stay fp32. Errors name the missing or inconsistent file. A
    /// <paramref name="dir"/> that is no directory but a Hub repo id is resolved through the cache;
    /// <paramref name="download"/> hears the files it downloads.
    /// </summary>
    public static PretrainedModel Load(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null,
        IProgress<HubFileProgress>? download = null)
    {
        NativeRuntime.Ensure();
        if (!System.IO.Directory.Exists(dir) && HubModelResolver.LooksLikeRepoId(dir))
            dir = HubModelResolver.Resolve(dir, HubOptions.FromEnvironment(), download);
        if (!System.IO.Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory not found: {dir}");
        var config = Path.Combine(dir, "config.json");
        return File.Exists(config) ? LoadHuggingFace(dir, config, dtype, device) : LoadLlama2c(dir, dtype, device);
    }

    /// <summary>
    /// A model of a config record (LlamaConfig, of any Llama-derived family, or OptConfig), random-initialised, or with
    /// <paramref name="initialize"/> false left for a checkpoint to fill.
    /// </summary>
    public static CausalLM Create(object config, ScalarType dtype = ScalarType.Float32, Device? device = null, bool initialize = true)
    {
        NativeRuntime.Ensure();
        if (device is null || device.type == TorchSharp.DeviceType.CPU)
        {
            var count = ParameterCount.Of(config);
            MemoryBudget.Require(count.Bytes(dtype), $"a model of {count.Total / 1e9:F2}B parameters in {StorageDtype.Name(dtype)}");
        }
        return config switch
        {
            LlamaConfig c => new LlamaForCausalLM(c, dtype, device, initialize),
            OptConfig c => new OptForCausalLM(c, dtype, device, initialize),
            _ => throw new ArgumentException($"unsupported config type {config.GetType().Name}"),
        };
    }

    static PretrainedModel LoadHuggingFace(string dir, string configPath, ScalarType dtype, Device? device)
    {
        var type = ConfigJson.ModelType(configPath);
        object config = type == "opt" ? OptConfig.FromFile(configPath)
            : LlamaFamily.Contains(type) ? LlamaConfig.FromFile(configPath)
            : throw new InvalidDataException(
                $"{configPath}: model_type '{type}' is not supported ({string.Join(", ", LlamaFamily.ModelTypes.Append("opt"))})");
        // The weight files are opened (their headers only) before anything is allocated, and the
        // config's sizes checked against them: a config that asks for 2e9 layers is an error, not an
        // out-of-memory kill. Weights are then allocated once, in their final dtype, and filled
        // tensor by tensor: loading holds no second copy of the model.
        using var weights = CheckpointFiles.Open(dir);
        var (layers, vocab, width) = config switch
        {
            LlamaConfig c => (c.NumHiddenLayers, c.VocabSize, c.HiddenSize),
            OptConfig c => (c.NumHiddenLayers, c.VocabSize, c.EmbedDim),
            _ => throw new ArgumentException($"unsupported config type {config.GetType().Name}"),
        };
        CheckSizes(configPath, weights, layers, vocab, width);
        var model = Create(config, dtype, device, initialize: false);
        try
        {
            CheckpointLayout.Load(model, weights);
            CheckFinite(model, dir);
            var tokenizer = TokenizerLoader.FromDirectory(dir);
            // OPT pads its embedding past the tokenizer (50272 rows for 50265 tokens); the reverse
            // would index past the embedding with the tokenizer's last ids.
            if (tokenizer.VocabSize > model.VocabSize)
                throw new InvalidDataException(
                    $"{dir}: the tokenizer has {tokenizer.VocabSize} tokens but config.json's vocab_size is {model.VocabSize}; ids from {model.VocabSize} up have no embedding");
            return new PretrainedModel(model, tokenizer, dir, CheckpointFormat.HuggingFace);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// config.json's layer count and embedding size against the stored tensors' names and shapes,
    /// before the model is built: decoder layers numbered 0..n-1 and an embed_tokens of (vocab_size, width).
    /// </summary>
    static void CheckSizes(string configPath, ITensorSource weights, int layers, int vocab, int width)
    {
        var stored = weights.Tensors.Keys
            .Select(k => System.Text.RegularExpressions.Regex.Match(k, @"(^|\.)layers\.(\d+)\."))
            .Where(m => m.Success).Select(m => long.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)).Distinct().Count();
        if (stored != layers)
            throw new InvalidDataException(
                $"{configPath}: num_hidden_layers = {layers} but {weights.Source} holds {stored} decoder layers");
        var embedding = weights.Tensors.Values.FirstOrDefault(t => t.Name.EndsWith("embed_tokens.weight", StringComparison.Ordinal));
        if (embedding is not null && (embedding.Shape.Count != 2 || embedding.Shape[0] != vocab || embedding.Shape[1] != width))
            throw new InvalidDataException(
                $"{configPath}: vocab_size {vocab} and width {width} do not match {embedding.Name} ({string.Join(" x ", embedding.Shape)}) in {weights.Source}");
    }

    /// <summary>Weights with a NaN or an infinity are refused, naming the first such tensor: a model that computes NaN tells nothing.</summary>
    static void CheckFinite(CausalLM model, string source)
    {
        using var _ = no_grad();
        // In slices of 1M elements: a mask of a whole embedding would add its size to the load's peak memory.
        const long slice = 1 << 20;
        foreach (var (name, p) in model.named_parameters())
        {
            using var flat = p.detach().reshape(-1);
            for (long start = 0; start < flat.numel(); start += slice)
            {
                using var scope = NewDisposeScope();
                if (!flat.narrow(0, start, Math.Min(slice, flat.numel() - start)).isfinite().all().item<bool>())
                    throw new InvalidDataException($"{source}: weight '{name}' holds NaN or infinite values");
            }
        }
    }

    static PretrainedModel LoadLlama2c(string dir, ScalarType dtype, Device? device)
    {
        var models = System.IO.Directory.GetFiles(dir, "*.model");
        var modelStems = models.Select(Path.GetFileNameWithoutExtension).ToHashSet();
        // A llama2.c tokenizer (tok512.bin) sits beside its SentencePiece twin (tok512.model).
        var checkpoints = System.IO.Directory.GetFiles(dir, "*.bin")
            .Where(f => !modelStems.Contains(Path.GetFileNameWithoutExtension(f))).ToList();
        if (checkpoints.Count != 1)
            throw new FileNotFoundException(checkpoints.Count == 0
                ? $"{dir}: not a model directory: no config.json (Hugging Face) and no llama2.c checkpoint .bin"
                : $"{dir}: several llama2.c checkpoints ({string.Join(", ", checkpoints.Select(Path.GetFileName))}); keep one");
        // The file's tensors are read whole, then copied into the model: both are held at once.
        var fileBytes = new FileInfo(checkpoints[0]).Length;
        MemoryBudget.Require(2 * fileBytes, $"{checkpoints[0]} ({ByteSize.Format(fileBytes)}, read and then copied into the model)");
        var (header, tensors) = Llama2cCheckpoint.Load(checkpoints[0]);
        var model = new LlamaForCausalLM(LlamaConfig.FromLlama2c(header), dtype, device);
        try
        {
            StateDict.LoadStrict(model, tensors, checkpoints[0]);
            CheckFinite(model, checkpoints[0]);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        var tokenizer = TokenizerLoader.FromDirectory(dir);
        if (tokenizer.VocabSize != header.VocabSize)
            throw new InvalidDataException(
                $"{dir}: tokenizer has {tokenizer.VocabSize} tokens but {Path.GetFileName(checkpoints[0])} has vocab_size {header.VocabSize}");
        return new PretrainedModel(model, tokenizer, dir, CheckpointFormat.Llama2c);
    }

    public void Dispose() => Model.Dispose();
}
