// Mirrors transformers' modeling_rope_utils.py: config.json's rope_scaling, and the inverse
// frequencies (rotary dim / 2) and attention factor each rope type gives (_compute_default,
// _linear_scaling, _dynamic_ntk, _yarn and _llama3_parameters, as of transformers 4.56, where yarn
// takes `factor` as given). They are computed with fp32 tensor operations in transformers' order,
// so they round as transformers' do.
using System.Text.Json;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>The rope types transformers implements that ChainLora implements too.</summary>
public enum RopeKind { Default, Linear, Dynamic, Yarn, Llama3 }

/// <summary>
/// config.json's <c>rope_scaling</c>. Keys are written back only when set (transformers reads a
/// <c>null</c> truncate or type differently from an absent one).
/// </summary>
public sealed record RopeScaling
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? RopeType { get; init; }
    /// <summary>The legacy name of rope_type (transformers' configs copy it into rope_type).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Type { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Factor { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? OriginalMaxPositionEmbeddings { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? LowFreqFactor { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? HighFreqFactor { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? AttentionFactor { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? BetaFast { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? BetaSlow { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? Mscale { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? MscaleAllDim { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? Truncate { get; init; }
    /// <summary>Keys none of the implemented rope types reads (short_factor of longrope, ...): refused.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Other { get; init; }

    /// <summary>The rope type's name as transformers resolves it: the legacy "type" overrides "rope_type" (configuration_*.py).</summary>
    [JsonIgnore] public string TypeName => Type ?? RopeType ?? "default";

    [JsonIgnore]
    public RopeKind Kind => TypeName switch
    {
        "default" => RopeKind.Default,
        "linear" => RopeKind.Linear,
        "dynamic" => RopeKind.Dynamic,
        "yarn" => RopeKind.Yarn,
        "llama3" => RopeKind.Llama3,
        _ => throw new ArgumentException($"config field 'rope_scaling' = {{type {TypeName}}}: rope type '{TypeName}' is not supported (default, linear, dynamic, yarn, llama3)"),
    };

    /// <summary>Throws naming the key and value that cannot describe a rope scaling ChainLora computes as transformers does.</summary>
    public RopeScaling Validate()
    {
        if (Other is { Count: > 0 } other)
        {
            var (key, value) = other.First();
            throw new ArgumentException($"config field 'rope_scaling.{key}' = {ConfigJson.Show(value)}: not read by any supported rope type (type '{TypeName}')");
        }
        if (Type is null && RopeType is null)
            throw new ArgumentException("config field 'rope_scaling' names no rope_type (transformers then has no rope function to call)");
        if (Type is not null && RopeType is not null && Type != RopeType)
            throw new ArgumentException($"config field 'rope_scaling' has type '{Type}' and rope_type '{RopeType}': they must agree");
        var kind = Kind;
        if (kind == RopeKind.Default) return this;
        Require(Factor is { } f && f > 0 && double.IsFinite(f), "factor", Factor, "must be a positive number");
        if (kind == RopeKind.Llama3)
        {
            Require(LowFreqFactor is > 0, "low_freq_factor", LowFreqFactor, "must be a positive number");
            Require(HighFreqFactor > LowFreqFactor, "high_freq_factor", HighFreqFactor, "must exceed low_freq_factor");
            Require(OriginalMaxPositionEmbeddings is > 0, "original_max_position_embeddings", OriginalMaxPositionEmbeddings, "must be positive");
        }
        if (kind == RopeKind.Yarn)
        {
            Require(OriginalMaxPositionEmbeddings is null or > 0, "original_max_position_embeddings", OriginalMaxPositionEmbeddings, "must be positive");
            Require(AttentionFactor is null or > 0, "attention_factor", AttentionFactor, "must be positive");
        }
        return this;
    }

    static void Require(bool ok, string key, object? value, string why)
    {
        if (!ok) throw new ArgumentException($"config field 'rope_scaling.{key}' = {value ?? "null"}: {why}");
    }

    /// <summary>
    /// The inverse frequencies (dim / 2) fp32 on the CPU and the factor cos and sin are multiplied by.
    /// <paramref name="seqLen"/> is dynamic scaling's current length (max position + 1); the other types ignore it.
    /// </summary>
    public static (Tensor InvFreq, double AttentionFactor) Frequencies(RopeScaling? scaling, int dim, double theta, int maxPositionEmbeddings,
        long seqLen = 0)
    {
        using var scope = NewDisposeScope();
        var kind = scaling?.Kind ?? RopeKind.Default;
        var exponents = arange(0, dim, 2, dtype: ScalarType.Int64, device: CPU).to(ScalarType.Float32) / dim;  // (dim / 2) fp32
        Tensor invFreq;
        var attentionFactor = 1.0;
        switch (kind)
        {
            case RopeKind.Default:
                invFreq = 1.0 / pow(Scalar(theta), exponents);
                break;
            case RopeKind.Linear:
                invFreq = 1.0 / pow(Scalar(theta), exponents) / scaling!.Factor!.Value;
                break;
            case RopeKind.Dynamic:
                invFreq = DynamicNtk(scaling!.Factor!.Value, dim, theta, maxPositionEmbeddings, seqLen, exponents);
                break;
            case RopeKind.Yarn:
                (invFreq, attentionFactor) = Yarn(scaling!, dim, theta, maxPositionEmbeddings);
                break;
            default:
                invFreq = Llama3(scaling!, 1.0 / pow(Scalar(theta), exponents));
                break;
        }
        return (invFreq.MoveToOuterDisposeScope(), attentionFactor);
    }

    /// <summary>
    /// NTK-aware scaling of the base for sequences past max_position_embeddings. transformers computes
    /// the new base from seq_len as an int64 tensor, hence in fp32; below the maximum it is the plain base.
    /// </summary>
    static Tensor DynamicNtk(double factor, int dim, double theta, int maxPositions, long seqLen, Tensor exponents)
    {
        if (seqLen <= maxPositions) return 1.0 / pow(Scalar(theta), exponents);
        var length = tensor(seqLen, device: CPU);                                          // int64, as torch.max(position_ids) + 1
        var scale = (factor * length / maxPositions - (factor - 1)).pow((double)dim / (dim - 2));  // fp32
        var theBase = theta * scale;
        return 1.0 / theBase.pow(exponents);
    }

    static (Tensor InvFreq, double AttentionFactor) Yarn(RopeScaling s, int dim, double theta, int maxPositions)
    {
        var factor = s.Factor!.Value;
        var original = s.OriginalMaxPositionEmbeddings ?? maxPositions;
        static double MScale(double scale, double m = 1) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
        // transformers tests mscale and mscale_all_dim for truth: 0 counts as absent, as beta 0 does below.
        var attention = s.AttentionFactor
            ?? (s.Mscale is { } m && m != 0 && s.MscaleAllDim is { } all && all != 0 ? MScale(factor, m) / MScale(factor, all) : MScale(factor));
        var betaFast = s.BetaFast is { } bf && bf != 0 ? bf : 32;
        var betaSlow = s.BetaSlow is { } bs && bs != 0 ? bs : 1;

        // Inverse dimension formula: the dimension whose wavelength turns num_rotations times over the original length.
        double CorrectionDim(double rotations) => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDim(betaFast), high = CorrectionDim(betaSlow);
        if (s.Truncate ?? true) (low, high) = (Math.Floor(low), Math.Ceiling(high));
        (low, high) = (Math.Max(low, 0), Math.Min(high, dim - 1));
        if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp

        var posFreqs = pow(Scalar(theta), arange(0, dim, 2, dtype: ScalarType.Int64, device: CPU).to(ScalarType.Float32) / dim);
        var extrapolation = 1.0 / posFreqs;
        var interpolation = 1.0 / (factor * posFreqs);
        var ramp = ((arange(dim / 2, dtype: ScalarType.Float32, device: CPU) - low) / (high - low)).clamp(0, 1);
        var extrapolationFactor = 1 - ramp;
        return (interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor, attention);
    }

    /// <summary>Llama 3.1's smooth interpolation: low frequencies divided by factor, high ones kept, a ramp between.</summary>
    static Tensor Llama3(RopeScaling s, Tensor invFreq)
    {
        var factor = s.Factor!.Value;
        double low = s.LowFreqFactor!.Value, high = s.HighFreqFactor!.Value, oldContext = s.OriginalMaxPositionEmbeddings!.Value;
        var lowFreqWavelen = oldContext / low;
        var highFreqWavelen = oldContext / high;
        var wavelen = 2 * Math.PI / invFreq;
        var llama = where(wavelen > lowFreqWavelen, invFreq / factor, invFreq);
        var smooth = (oldContext / wavelen - low) / (high - low);
        var smoothed = (1 - smooth) * llama / factor + smooth * llama;
        var medium = (wavelen < highFreqWavelen).logical_not().logical_and((wavelen > lowFreqWavelen).logical_not());
        return where(medium, smoothed, llama);
    }

    static Tensor Scalar(double value) => tensor(value, ScalarType.Float32, CPU);
}
