using System.Text.Json;
using ChainLora.Lora;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Export;

/// <summary>Chains with known factors, a tiny tokenizer folder and logits helpers for the export tests.</summary>
static class ExportKit
{
    /// <summary>Gives every current link a random B (seeded), so its delta is nonzero.</summary>
    public static void RandomizeB(LoraAdapters adapters, long seed)
    {
        using var _ = no_grad();
        manual_seed(seed);
        foreach (var l in adapters.Layers.Values) l.B.normal_(0, 0.1);
    }

    /// <summary>A 3-link chain at ranks 8, 4, 4 (alphas 16, 8, 16): two tied links plus a live one, all nonzero.</summary>
    public static LoraAdapters ThreeLinkChain(CausalLM model, LoraConfig? config = null)
    {
        var adapters = LoraAdapters.Inject(model, config ?? new LoraConfig { Rank = 8, Alpha = 16 });
        RandomizeB(adapters, 101);
        adapters.TieKnot();
        adapters.ExtendChain(4, 8);
        RandomizeB(adapters, 102);
        adapters.TieKnot();
        adapters.ExtendChain(4, 16);
        RandomizeB(adapters, 103);
        return adapters;
    }

    /// <summary>Moves every trainable bias, as training with bias "all" / "lora_only" would.</summary>
    public static void PerturbBiases(nn.Module model, long seed)
    {
        using var _ = no_grad();
        manual_seed(seed);
        foreach (var (name, p) in model.named_parameters().Where(p => p.name.EndsWith(".bias") && p.parameter.requires_grad))
            p.add_(randn_like(p) * 0.1);
    }

    public static Tensor Logits(CausalLM model)
    {
        using var _ = no_grad();
        return model.Forward(TinyModels.Tokens(5));
    }

    /// <summary>A GPT-2 BPE vocabulary of OPT's four special tokens and a few symbols: enough to load, not to read text.</summary>
    public static void WriteTinyBpe(string dir)
    {
        Directory.CreateDirectory(dir);
        var vocab = new Dictionary<string, int> { ["<s>"] = 0, ["<pad>"] = 1, ["</s>"] = 2, ["<unk>"] = 3, ["a"] = 4, ["b"] = 5, ["ab"] = 6 };
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\na b\n");
    }
}

/// <summary>Model folders of the family reference fixtures (scripts/make_family_fixtures.py), loadable by PretrainedModel.</summary>
static class FamilyModels
{
    /// <summary>One fixture per family; llama with llama3 rope scaling, as Llama 3.x ships.</summary>
    public static TheoryData<string> Names => ["llama-rope-llama3", "qwen2", "qwen3", "mistral", "gemma", "phi3"];

    /// <summary>
    /// The fixture's config.json and model.safetensors in <paramref name="dir"/>, with a byte-level BPE
    /// vocabulary of single letters (ids 3..29, inside the fixtures' 64) so text tokenizes.
    /// </summary>
    public static string Folder(string fixture, string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var file in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(Fixtures.Reference(fixture), file), Path.Combine(dir, file));
        var vocab = new Dictionary<string, int> { ["<s>"] = 0, ["<pad>"] = 1, ["</s>"] = 2, ["\u0120"] = 3 };
        foreach (var c in "abcdefghijklmnopqrstuvwxyz.") vocab[c.ToString()] = vocab.Count;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n");
        return dir;
    }

    /// <summary>The family's linear layer names (LoraConfig.Targets), sorted as PEFT's target_modules are written.</summary>
    public static IReadOnlyList<string> LinearNames(string modelType) => [.. LoraConfig.Targets[modelType].Linear.Order(StringComparer.Ordinal)];
}
