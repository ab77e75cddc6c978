using ChainLora.Loading;
using ChainLora.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>
/// Real-size configs built on the meta device (no weights allocated); the sorted "name [shape]"
/// list must equal the committed approval file, written in Hugging Face naming
/// (transformers' named_parameters(), where a tied lm_head is not listed twice).
/// </summary>
public class ManifestTests
{
    public static TheoryData<string> Configs =>
        ["opt-125m", "opt-350m", "opt-1.3b", "llama-2-7b", "llama-3.2-1b", "qwen2.5-0.5b", "qwen3-0.6b", "mistral-7b-v0.3", "gemma-2b", "phi-3-mini-4k"];

    static object ConfigOf(string name) => name switch
    {
        "opt-125m" => OptConfig.Opt125m,
        "opt-350m" => OptConfig.Opt350m,
        "opt-1.3b" => OptConfig.Opt1_3b,
        "llama-2-7b" => LlamaConfig.Llama2_7B,
        _ => FamilyConfigs.Published[name],
    };

    [Theory, MemberData(nameof(Configs))]
    public void Parameter_names_and_shapes_match_the_approval_file(string name)
    {
        using var model = PretrainedModel.Create(ConfigOf(name), device: new Device(DeviceType.META));
        var actual = StateDict.Manifest(model).ToList();
        var approvedPath = Path.Combine(AppContext.BaseDirectory, "Approvals", $"manifest-{name}.txt");
        var approved = File.ReadAllLines(approvedPath).Where(l => l.Length > 0).ToList();
        if (!actual.SequenceEqual(approved))
        {
            var receivedPath = Path.ChangeExtension(approvedPath, ".received.txt");
            File.WriteAllLines(receivedPath, actual);
            var firstDiff = actual.Zip(approved).FirstOrDefault(p => p.First != p.Second);
            Assert.Fail($"{name}: manifest differs from {approvedPath} (received: {receivedPath}); " +
                $"{actual.Count} vs {approved.Count} lines; first difference: '{firstDiff.First}' vs '{firstDiff.Second}'");
        }
    }
}
