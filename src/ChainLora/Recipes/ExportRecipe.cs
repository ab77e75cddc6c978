// `chainlora export --run DIR`: rebuild a trained run from its saved chain and the pretrained model
// it recorded, then write it as a PEFT adapter or as a merged Hugging Face checkpoint.
using ChainLora.Export;
using ChainLora.Loading;
using static TorchSharp.torch;

namespace ChainLora.Recipes;

public enum ExportFormat
{
    /// <summary>adapter_config.json + adapter_model.safetensors, relative to the pretrained weights.</summary>
    Peft,
    /// <summary>The full fine-tuned weights as a Hugging Face checkpoint with config and tokenizer.</summary>
    Merged,
}

public sealed record ExportRecipeOptions
{
    /// <summary>A run folder of a train run (holds chain/chain.json).</summary>
    public required string Run { get; init; }
    public required ExportFormat Format { get; init; }
    /// <summary>The output folder, written whole or not at all.</summary>
    public required string Out { get; init; }
    /// <summary>Merged: dtype, shard size; both formats: whether an output folder with other files may be replaced.</summary>
    public MergedExportOptions Merged { get; init; } = new();
    /// <summary>Merged: where W0 is loaded and the chain merged; null is the CPU.</summary>
    public Device? Device { get; init; }
}

/// <summary>What an export wrote.</summary>
public sealed record ExportResult(ExportFormat Format, string Out, string BaseModel, IReadOnlyList<string> Files);

public static class ExportRecipe
{
    /// <summary>
    /// Loads the chain of the run and its base model, and writes the output folder: the chain
    /// stacked as one adapter (<see cref="PeftAdapter.FromLinks"/>), or the weights W0 + sum of the
    /// links' deltas merged in fp32 and stored in <see cref="MergedExportOptions.DType"/>.
    /// </summary>
    public static ExportResult Run(ExportRecipeOptions options)
    {
        var (runDir, outDir, merged) = (options.Run, options.Out, options.Merged);
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"run directory not found: {runDir}");
        ExportDirectory.CheckReplaceable(outDir, merged.Overwrite);
        using var chain = RunArtifacts.LoadChain(runDir);
        if (!Directory.Exists(chain.BaseModel))
            throw new DirectoryNotFoundException(
                $"{Path.Combine(runDir, RunArtifacts.FolderName, RunArtifacts.ChainJson)}: base model folder {chain.BaseModel} not found");
        // An adapter needs only the model's layout (bf16 on the CPU is plenty); a merge needs W0 exactly.
        using var pretrained = options.Format == ExportFormat.Peft
            ? PretrainedModel.Load(chain.BaseModel, ScalarType.BFloat16, CPU)
            : PretrainedModel.Load(chain.BaseModel, ScalarType.Float32, options.Device ?? CPU);
        using var adapter = chain.ToAdapter(pretrained.Model);
        if (options.Format == ExportFormat.Peft)
            adapter.Save(outDir, chain.BaseModel, merged.Overwrite);
        else
        {
            adapter.MergeInto(pretrained.Model);
            MergedExport.Save(pretrained.Model, outDir, chain.BaseModel, merged);
        }
        var files = Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        return new ExportResult(options.Format, Path.GetFullPath(outDir), chain.BaseModel, files!);
    }
}
