// What defines a train run, for checkpoints: a resume that differs in any of these (another task,
// data that changed on disk, another rank, seed or learning rate) is refused, naming the value.
using System.Globalization;
using System.Security.Cryptography;
using ChainLora.IO;
using ChainLora.Tasks;

namespace ChainLora.Recipes;

public static class RunFingerprint
{
    public static Dictionary<string, string> Of(TrainRecipeOptions o, string modelDirectory, DataSummary data)
    {
        static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        var t = o.Trainer;
        var fingerprint = new Dictionary<string, string>
        {
            ["model"] = Path.GetFullPath(modelDirectory),
            ["task"] = o.Task.ToLowerInvariant(),
            ["data"] = string.Join(", ", data.TrainFiles.Concat(data.ValidationFiles).Distinct().Select(f => $"{Path.GetFileName(f)} sha256:{Sha256(f)}")),
            ["sizes"] = $"train {o.Sizes.Train}, dev {o.Sizes.Dev}, eval {o.Sizes.Eval}",
            ["seed"] = $"{o.Seed}",
            ["batch_size"] = $"{o.BatchSize}",
            ["method"] = EnumNames.Name(t.Method),
            ["variant"] = EnumNames.Name(t.Variant),
            ["chain"] = $"length {o.Chain.Length}, ranks {(o.Chain.Ranks is { } r ? string.Join(",", r) : "-")}, knots {(o.Chain.Auto is { } a ? $"auto {a.Window}/{F(a.Threshold)}" : "fixed")}",
            ["lora"] = $"rank {o.Lora.Rank}, alpha {F(o.Lora.Alpha)}, dropout {F(o.Lora.Dropout)}, targets {string.Join(",", o.Lora.TargetModules)}, bias {EnumNames.Name(o.Lora.Bias)}" +
                (o.Lora.UseRsLora ? ", rslora" : ""),
            ["optimizer"] = $"{EnumNames.Name(t.Optimizer)}, weight decay {F(t.WeightDecay)}, momentum {F(t.Momentum)}",
            ["learning_rate"] = $"{F(t.LearningRate)}, warmup {F(t.WarmupRatio)}, rewarm {t.RewarmEachLink}, epochs {t.Epochs}, accumulation {t.GradientAccumulation}, clip {F(t.MaxGradNorm)}",
            ["adapter"] = o.Adapter is null ? "-" : Path.GetFullPath(o.Adapter),
        };
        // Only when set: checkpoints written before the option existed keep their fingerprint.
        if (o.Context is { } context) fingerprint["context"] = $"{context}";
        if (o.Split != TextSplit.Shuffled) fingerprint["split"] = EnumNames.Name(o.Split);
        // Spectra are recorded per knot: a run resumed with them on would miss those tied before.
        if (t.RecordDeltaSpectra) fingerprint["delta_spectra"] = "on";
        if (t.FreezeA || t.OptimizerPruneFraction > 0 || t.RestartWarmupRatio > 0)
            fingerprint["variant_settings"] = $"freeze A {t.FreezeA}, prune {F(t.OptimizerPruneFraction)}, restart warmup {F(t.RestartWarmupRatio)}";
        if (o.TrainOnInputs) fingerprint["train_on_inputs"] = "true";
        if (o.Pack) fingerprint["pack"] = "true";
        if (o.Truncation != SftTruncationMode.Cut) fingerprint["truncation"] = EnumNames.Name(o.Truncation);
        if (t.Activations != Models.ActivationPrecision.Auto) fingerprint["activations"] = EnumNames.Name(t.Activations);
        return fingerprint;
    }

    static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream))[..16].ToLowerInvariant();
    }
}
