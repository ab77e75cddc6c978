using System.Text.Json.Nodes;
using ChainLora.Export;
using ChainLora.IO;
using ChainLora.Loading;
using ChainLora.Lora;
using ChainLora.Models;

namespace ChainLora.Tests.Export;

/// <summary>
/// Each Llama-derived family through the library: loaded from a model folder, adapted, exported as a
/// PEFT adapter under the family's module names (PEFT's naming for Phi-3's fused qkv_proj and
/// gate_up_proj) and as a merged checkpoint whose config.json keeps the family's fields.
/// </summary>
public class FamilyExportTests : TempFolderTest
{
    [Theory, MemberData(nameof(FamilyModels.Names), MemberType = typeof(FamilyModels))]
    public void A_COLA_chain_on_every_linear_layer_exports_as_a_PEFT_adapter_under_the_familys_names(string fixture)
    {
        var source = FamilyModels.Folder(fixture, PathIn("model"));
        using var trained = PretrainedModel.Load(source);
        var modelType = trained.Model.ModelType;
        var adapters = ExportKit.ThreeLinkChain(trained.Model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] });
        var expected = ExportKit.Logits(trained.Model);
        // all-linear: every linear layer of every decoder layer, never the LM head (PEFT leaves out the output layer).
        var perLayer = FamilyModels.LinearNames(modelType);
        Assert.Equal(perLayer.Count * 2, adapters.Layers.Count);
        Assert.DoesNotContain(adapters.Layers.Keys, k => k.Contains("lm_head"));

        var adapterDir = PathIn("adapter");
        using (var adapter = PeftAdapter.FromChain(adapters)) adapter.Save(adapterDir, source);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapterDir, PeftAdapterConfig.FileName)))!;
        Assert.Equal(perLayer, config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));
        var keys = SafeTensors.ReadHeader(Path.Combine(adapterDir, "adapter_model.safetensors")).Tensors.Keys.ToList();
        var fused = modelType == "phi3" ? "self_attn.qkv_proj" : "self_attn.q_proj";
        Assert.Contains($"base_model.model.model.layers.1.{fused}.lora_A.weight", keys);
        Assert.Equal(perLayer.Count * 2 * 2, keys.Count);

        using var fresh = PretrainedModel.Load(source);
        using (var imported = PeftAdapter.Load(adapterDir)) imported.MergeInto(fresh.Model);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(fresh.Model), expected);
        Assert.True(diff < 1e-4, $"{fixture}: PEFT round trip max |Δ| = {diff:E2}");
    }

    [Theory, MemberData(nameof(FamilyModels.Names), MemberType = typeof(FamilyModels))]
    public void A_merged_export_keeps_the_familys_config_fields_and_loads_with_the_same_logits(string fixture)
    {
        var source = FamilyModels.Folder(fixture, PathIn("model"));
        using var trained = PretrainedModel.Load(source);
        var modelType = trained.Model.ModelType;
        var adapters = LoraAdapters.Inject(trained.Model, new LoraConfig { Rank = 4, Alpha = 8 });
        // No targets given: the family's defaults (PEFT's mapping; Phi-3's fused qkv_proj).
        Assert.All(adapters.Layers.Keys, k => Assert.Contains(LoraConfig.DefaultTargetsFor(modelType), t => k.EndsWith("." + t, StringComparison.Ordinal)));
        Assert.Equal(LoraConfig.DefaultTargetsFor(modelType).Count * 2, adapters.Layers.Count);
        ExportKit.RandomizeB(adapters, 7);
        var expected = ExportKit.Logits(trained.Model);

        var merged = PathIn("merged");
        MergedExport.Save(trained.Model, merged, source, cancel: TestContext.Current.CancellationToken);
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        var written = JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "config.json")))!.AsObject();
        var family = LlamaFamily.For(modelType);
        Assert.Equal(family.Architecture, written["architectures"]![0]!.GetValue<string>());
        foreach (var (key, value) in original.Where(p => family.Fields.Contains(p.Key) && p.Key != "architectures"))
            Assert.True(JsonNode.DeepEquals(value, written[key]), $"{fixture}: '{key}' was {value?.ToJsonString()}, exported {written[key]?.ToJsonString()}");
        Assert.Equal(((LlamaForCausalLM)trained.Model).Config.HeadSize, written["head_dim"]?.GetValue<int>() ?? -1);
        Assert.All(written, p => Assert.Contains(p.Key, family.Fields));
        Assert.DoesNotContain(SafeTensors.ReadHeader(Path.Combine(merged, "model.safetensors")).Tensors.Keys, k => k.Contains("lora"));

        using var loaded = PretrainedModel.Load(merged);
        var diff = Fixtures.MaxAbsDiff(ExportKit.Logits(loaded.Model), expected);
        Assert.True(diff < 1e-4, $"{fixture}: merged export max |Δ| = {diff:E2}");
    }
}
