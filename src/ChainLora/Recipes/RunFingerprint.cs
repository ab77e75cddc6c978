// What defines a train run, for checkpoints: a resume that differs in any of these (another task,
// data that changed on disk, another rank, seed or learning rate, any setting of the options record)
// is refused, naming the value.
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.IO;
using ChainLora.Tasks;

namespace ChainLora.Recipes;

public static class RunFingerprint
{
    /// <summary>
    /// The key that says which form the fingerprint has; checkpoints written before it existed said some
    /// settings in other words, and <see cref="Training.Checkpoint"/> compares only what both name alike.
    /// </summary>
    public const string VersionKey = Training.Checkpoint.FingerprintVersionKey;

    /// <summary>
    /// Every setting of the options record (<see cref="OptionRecords.Flatten"/>, JSON values; a string as it is),
    /// then what identifies the run: the model's folder, the task, the data files' hashes, the seed and method.
    /// </summary>
    public static Dictionary<string, string> Of(TrainRecipeOptions o, string modelDirectory, DataSummary data)
    {
        var fingerprint = new Dictionary<string, string> { [VersionKey] = "2" };
        foreach (var (key, value) in OptionRecords.Flatten(o))
            fingerprint[key] = value is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : value?.ToJsonString() ?? "null";
        fingerprint["model"] = Path.GetFullPath(modelDirectory);
        fingerprint["task"] = o.Task.ToLowerInvariant();
        fingerprint["data"] = string.Join(", ", data.TrainFiles.Concat(data.ValidationFiles).Distinct().Select(f => $"{Path.GetFileName(f)} sha256:{Sha256(f)}"));
        fingerprint["seed"] = $"{o.Seed}";
        fingerprint["method"] = EnumNames.Name(o.Trainer.Method);
        fingerprint["adapter"] = o.Adapter is null ? "-" : Path.GetFullPath(o.Adapter);
        // Spectra are recorded per knot: a run resumed with them on would miss those tied before.
        if (o.Trainer.RecordDeltaSpectra) fingerprint["delta_spectra"] = "on";
        return fingerprint;
    }

    static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream))[..16].ToLowerInvariant();
    }
}
