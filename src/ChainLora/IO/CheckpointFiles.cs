// Which weight files of a Hugging Face model folder to read, in transformers' order of preference
// (modeling_utils: the single file, then the sharded index; safetensors before PyTorch pickles).
namespace ChainLora.IO;

public static class CheckpointFiles
{
    public const string SafeTensorsIndex = "model.safetensors.index.json";
    public const string SafeTensorsFile = "model.safetensors";
    public const string PyTorchIndex = "pytorch_model.bin.index.json";
    public const string PyTorchFile = "pytorch_model.bin";

    /// <summary>The weight files in order of preference; the first present one is read.</summary>
    public static readonly IReadOnlyList<string> Preference = [SafeTensorsFile, SafeTensorsIndex, PyTorchFile, PyTorchIndex];

    /// <summary>Opens the preferred weights of <paramref name="modelDir"/>, validating headers and indexes.</summary>
    public static ITensorSource Open(string modelDir)
    {
        var found = Preference.FirstOrDefault(f => File.Exists(Path.Combine(modelDir, f)))
            ?? throw new FileNotFoundException($"{modelDir}: no weights (looked for {string.Join(", ", Preference)})");
        var path = Path.Combine(modelDir, found);
        return found switch
        {
            SafeTensorsIndex => ShardedTensorSource.Open(path, SafeTensorsSource.Open),
            SafeTensorsFile => SafeTensorsSource.Open(path),
            PyTorchIndex => ShardedTensorSource.Open(path, PyTorchCheckpoint.Open),
            _ => PyTorchCheckpoint.Open(path),
        };
    }
}
