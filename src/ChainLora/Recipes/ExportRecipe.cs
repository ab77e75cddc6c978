// `chainlora export --run DIR`: rebuild a trained run from its saved chain and the pretrained model
// it recorded, then write it as a PEFT adapter or as a merged Hugging Face checkpoint.
using ChainLora.Export;
using ChainLora.IO;
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
    /// Refused, before anything is written: an output folder that is, holds or lies inside the run
    /// or the base model (replacing it would delete what the export reads), and one another export
    /// is writing (it holds the folder's lock, see <see cref="FolderLock.AcquireBeside"/>) or a run is
    /// using (with --force; the run holds <c>OUT/.lock</c>).
    /// <paramref name="cancel"/> stops the export at the next phase or shard with an
    /// <see cref="OperationCanceledException"/>; the output folder is then as it was.
    /// </summary>
    public static ExportResult Run(ExportRecipeOptions options, CancellationToken cancel = default)
    {
        var (runDir, outDir, merged) = (options.Run, options.Out, options.Merged);
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"run directory not found: {runDir}");
        RefuseOverlap(outDir, runDir, $"the run folder --run {runDir}");
        ExportDirectory.CheckReplaceable(outDir, merged.Overwrite);
        using var chain = RunArtifacts.LoadChain(runDir);
        if (!Directory.Exists(chain.BaseModel))
            throw new DirectoryNotFoundException(
                $"{Path.Combine(runDir, RunArtifacts.FolderName, RunArtifacts.ChainJson)}: base model folder {chain.BaseModel} not found");
        RefuseOverlap(outDir, chain.BaseModel, $"the base model folder {chain.BaseModel} of the run");
        // Held until the new folder is in place: a second export would clear this one's temporary
        // folder as a leftover, or swap its own folder in halfway through this one's.
        using var exportLock = FolderLock.AcquireBeside(outDir, "export");
        // --force onto a run folder that a run is writing would pull the folder from under it; its lock says so.
        using var runLock = File.Exists(Path.Combine(outDir, FolderLock.FileName)) ? FolderLock.Acquire(outDir) : null;
        cancel.ThrowIfCancellationRequested();
        // An adapter needs only the model's layout (bf16 on the CPU is plenty); a merge needs W0 exactly.
        using var pretrained = options.Format == ExportFormat.Peft
            ? PretrainedModel.Load(chain.BaseModel, ScalarType.BFloat16, CPU)
            : PretrainedModel.Load(chain.BaseModel, ScalarType.Float32, options.Device ?? CPU);
        cancel.ThrowIfCancellationRequested();
        using var adapter = chain.ToAdapter(pretrained.Model);
        if (options.Format == ExportFormat.Peft)
            adapter.Save(outDir, chain.BaseModel, merged.Overwrite);
        else
        {
            adapter.MergeInto(pretrained.Model);
            cancel.ThrowIfCancellationRequested();
            MergedExport.Save(pretrained.Model, outDir, chain.BaseModel, merged, cancel);
        }
        var files = Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        return new ExportResult(options.Format, Path.GetFullPath(outDir), chain.BaseModel, files!);
    }

    /// <summary>
    /// Throws unless <paramref name="outDir"/> and <paramref name="source"/> are apart, compared with
    /// every symbolic link resolved on both sides: replacing an output folder that is, holds or lies
    /// inside a source deletes the source (--force on the folder of all runs, --out RUN/chain).
    /// </summary>
    static void RefuseOverlap(string outDir, string source, string what)
    {
        var (resolvedOut, resolvedSource) = (ResolvedPath.Of(outDir), ResolvedPath.Of(source));
        var relation = (ResolvedPath.IsSameOrInside(resolvedOut, resolvedSource), ResolvedPath.IsSameOrInside(resolvedSource, resolvedOut)) switch
        {
            (true, true) => "is",
            (true, false) => "lies inside",
            (false, true) => "holds",
            _ => null,
        };
        if (relation is not null)
            throw new ArgumentException($"--out {outDir} {relation} {what}; replacing it would delete what the export reads: choose a folder outside it");
    }
}
