using static TorchSharp.torch;

namespace ChainLora.Models;

/// <summary>The storage dtypes of frozen matrices and embeddings by their names: "fp32" and "bf16".</summary>
public static class StorageDtype
{
    public static readonly IReadOnlyList<string> Names = ["fp32", "bf16"];

    public static ScalarType Parse(string name) => name switch
    {
        "fp32" => ScalarType.Float32,
        "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"dtype '{name}': expected fp32 or bf16"),
    };

    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        _ => throw new ArgumentException($"dtype {dtype}: only fp32 and bf16 are storage dtypes"),
    };
}
