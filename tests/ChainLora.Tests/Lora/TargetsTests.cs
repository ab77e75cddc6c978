using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Tests.Export;
using Linear = ChainLora.Models.Linear;

namespace ChainLora.Tests.Lora;

/// <summary>LoRA targets: the per-family table (defaults and linear layers), PEFT's all-linear, and --help.</summary>
public class TargetsTests
{
    static LlamaForCausalLM Model(string fixture) =>
        new(LlamaConfig.FromFile(Path.Combine(Fixtures.Reference(fixture), "config.json")));

    [Theory, MemberData(nameof(FamilyModels.Names), MemberType = typeof(FamilyModels))]
    public void The_tables_linear_layers_are_the_models_own(string fixture)
    {
        using var model = Model(fixture);
        var inLayer = model.named_modules().Where(m => m.module is Linear && m.name.StartsWith("model.layers.0.", StringComparison.Ordinal))
            .Select(m => m.name[(m.name.LastIndexOf('.') + 1)..]).Order(StringComparer.Ordinal);
        Assert.Equal(FamilyModels.LinearNames(model.ModelType), inLayer);
    }

    [Fact]
    public void Every_family_has_default_targets()
    {
        Assert.All(LlamaFamily.ModelTypes.Append("opt"), t => Assert.NotEmpty(LoraConfig.DefaultTargetsFor(t)));
        Assert.Equal(["qkv_proj"], LoraConfig.DefaultTargetsFor("phi3"));
        Assert.Equal(["q_proj", "v_proj"], LoraConfig.DefaultTargetsFor("qwen3"));
    }

    [Fact]
    public void All_linear_adapts_every_linear_layer_but_an_untied_lm_head()
    {
        using var model = Model("mistral");   // untied: lm_head is a Linear
        var adapters = LoraAdapters.Inject(model, new LoraConfig { TargetModules = [LoraConfig.AllLinear] });
        var linears = model.named_modules().Where(m => m.module is Linear).Select(m => m.name).ToList();
        Assert.Contains("lm_head", linears);
        Assert.Equal(linears.Where(n => n != "lm_head").Order(), adapters.Layers.Keys.Order());
        Assert.Equal(14, adapters.Layers.Count);
    }

    [Fact]
    public void All_linear_with_other_names_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new LoraConfig { TargetModules = [LoraConfig.AllLinear, "q_proj"] }.Validate());
        Assert.Contains("all-linear", e.Message);
    }

    [Fact]
    public void Train_help_names_every_familys_linear_layers_and_all_linear()
    {
        var (exit, output, _) = CliHarness.Run("train", "--help");
        Assert.Equal(0, exit);
        Assert.Contains("all-linear", output);
        foreach (var type in LlamaFamily.ModelTypes.Append("opt")) Assert.Contains(type, output);
        foreach (var name in new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj", "out_proj", "fc1", "fc2" })
            Assert.Contains(name, output);
    }
}
