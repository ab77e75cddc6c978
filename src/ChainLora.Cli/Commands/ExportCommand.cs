using System.CommandLine;
using ChainLora.Export;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Recipes;

namespace ChainLora.Cli.Commands;

static class ExportCommand
{
    public static Command Create(TextWriter output)
    {
        var run = new Option<DirectoryInfo>("--run") { Description = "Run folder of `chainlora train --out` (holds chain/chain.json)", Required = true }
            .ExistingFolder();
        var format = new Option<string>("--format")
        {
            Description = "peft: adapter_config.json + adapter_model.safetensors (the whole chain as one adapter); " +
                "merged: the fine-tuned model as a Hugging Face checkpoint with config.json and tokenizer files",
            Required = true,
        }.OneOf([.. EnumNames.All<ExportFormat>()]);
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Output folder, written whole or not at all", Required = true }
            .WritableFolder();
        var maxShard = new Option<string>("--max-shard-size")
        {
            Description = "merged: split weights into shards above this size (2GB = 2e9 bytes, 1GiB = 2^30)",
            DefaultValueFactory = _ => "2GB",
        }.Check(text =>
        {
            try { ByteSize.Parse(text); return null; }
            catch (ArgumentException e) { return $"--max-shard-size {e.Message}"; }
        });
        var dtype = new Option<string>("--dtype")
        {
            Description = "merged: dtype of the written weights, fp32 or bf16 (the merge itself is computed in fp32)",
            DefaultValueFactory = _ => StorageDtype.Names[0],
        }.OneOf([.. StorageDtype.Names]);
        var force = new Option<bool>("--force") { Description = "Replace an output folder that holds files other than an earlier export's" };
        var device = CommonOptions.Device();
        device.Description = "merged: where the pretrained weights are loaded and the chain merged: cpu or cuda[:N] (cuda needs a CUDA build of TorchSharp)";
        var command = new Command("export", "Export a trained LoRA / COLA run as a PEFT adapter or as merged Hugging Face weights")
        {
            run, format, outDir, maxShard, dtype, force, device,
        };
        command.SetStoppableAction((r, stop) =>
        {
            // Ctrl+C or SIGTERM: stop, remove the half-written temporary folder, exit 130; --out keeps what it held.
            var options = new ExportRecipeOptions
            {
                Run = r.GetValue(run)!.FullName,
                Format = r.GetEnum<ExportFormat>(format),
                Out = r.GetValue(outDir)!.FullName,
                Merged = new MergedExportOptions
                {
                    DType = StorageDtype.Parse(r.GetValue(dtype)!),
                    MaxShardBytes = ByteSize.Parse(r.GetValue(maxShard)!),
                    Overwrite = r.GetValue(force),
                },
                Device = CommonOptions.ParseDevice(r.GetValue(device)!),
            };
            ExportResult result;
            try
            {
                result = ExportRecipe.Run(options, stop);
            }
            catch (OperationCanceledException e) when (stop.IsCancellationRequested)
            {
                throw new OperationCanceledException($"export stopped; {options.Out} is unchanged", e, stop);
            }
            output.WriteLine($"wrote {EnumNames.Name(result.Format)} export to {result.Out}");
            return 0;
        });
        return command;
    }
}
