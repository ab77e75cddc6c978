using System.Text.Json;
using static TorchSharp.torch;

namespace ChainLora.Tests;

/// <summary>Reads the reference fixtures written by scripts/make_reference_fixtures.py (and make_pytorch_fixtures.py).</summary>
static class Fixtures
{
    public static string Reference(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "reference", name);

    /// <summary>A torch.save checkpoint fixture (scripts/make_pytorch_fixtures.py).</summary>
    public static string PyTorch(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "pytorch", name);

    public static JsonElement Json(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement;

    public static Tensor Ints(JsonElement e) =>
        tensor(e.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetInt64())).ToArray(),
            [e.GetArrayLength(), e[0].GetArrayLength()]);

    /// <summary>A nested [R][C] float array as a tensor.</summary>
    public static Tensor Floats2(JsonElement e) =>
        tensor(e.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(x => x.GetSingle())).ToArray(),
            [e.GetArrayLength(), e[0].GetArrayLength()]);

    /// <summary>A nested [B][T][V] float array as a tensor.</summary>
    public static Tensor Floats3(JsonElement e)
    {
        var (b, t, v) = (e.GetArrayLength(), e[0].GetArrayLength(), e[0][0].GetArrayLength());
        var data = e.EnumerateArray().SelectMany(r => r.EnumerateArray().SelectMany(c => c.EnumerateArray().Select(x => x.GetSingle()))).ToArray();
        return tensor(data, [b, t, v]);
    }

    public static double MaxAbsDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
