// `chainlora export --run DIR`: rebuild a trained run from its saved chain and the pretrained model
// it recorded, then write it as a PEFT adapter or as a merged Hugging Face checkpoint.
using ChainLora.Loading;
using static TorchSharp.torch;

namespace ChainLora.Export;

public enum ExportFormat
{
    /// <summary>adapter_config.json + adapter_model.safetensors, relative to the pretrained weights.</summary>
    Peft,
    /// <summary>The full fine-tuned weights as a Hugging Face checkpoint with config and tokenizer.</summary>
    Merged,
}

public static class RunExport
{
    public static ExportFormat ParseFormat(string text) => text switch
    {
        "peft" => ExportFormat.Peft,
        "merged" => ExportFormat.Merged,
        _ => throw new ArgumentException($"export format '{text}': expected peft or merged"),
    };

    /// <summary>
    /// Loads the chain of <paramref name="runDir"/> and its base model, and writes
    /// <paramref name="outDir"/>: the chain stacked as one adapter (<see cref="PeftAdapter.FromLinks"/>),
    /// or the weights W0 + sum of the links' deltas merged in fp32 on <paramref name="device"/> (the
    /// CPU when null) and stored in <paramref name="merged"/>.DType. <paramref name="merged"/>.Overwrite
    /// applies to both formats.
    /// </summary>
    public static void Export(string runDir, ExportFormat format, string outDir, MergedExportOptions merged, Device? device = null)
    {
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"run directory not found: {runDir}");
        ExportDirectory.CheckReplaceable(outDir, merged.Overwrite);
        using var chain = RunArtifacts.LoadChain(runDir);
        if (!Directory.Exists(chain.BaseModel))
            throw new DirectoryNotFoundException(
                $"{Path.Combine(runDir, RunArtifacts.FolderName, RunArtifacts.ChainJson)}: base model folder {chain.BaseModel} not found");
        // An adapter needs only the model's layout (bf16 on the CPU is plenty); a merge needs W0 exactly.
        using var pretrained = format == ExportFormat.Peft
            ? PretrainedModel.Load(chain.BaseModel, ScalarType.BFloat16, CPU)
            : PretrainedModel.Load(chain.BaseModel, ScalarType.Float32, device ?? CPU);
        using var adapter = chain.ToAdapter(pretrained.Model);
        if (format == ExportFormat.Peft)
        {
            adapter.Save(outDir, chain.BaseModel, merged.Overwrite);
            return;
        }
        adapter.MergeInto(pretrained.Model);
        MergedExport.Save(pretrained.Model, outDir, chain.BaseModel, merged);
    }
}
