using ChainLora.Loading;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Models;

/// <summary>A model's size from its config (what the memory budget checks before allocating) equals what the model holds.</summary>
public class ParameterCountTests
{
    public static TheoryData<string> Configs => ["llama", "llama-untied-gqa-biases", "opt", "opt-postln-projected", "opt-no-bias-no-affine"];

    static object Config(string name) => name switch
    {
        "llama" => TinyModels.LlamaConfig with { TieWordEmbeddings = true },
        "llama-untied-gqa-biases" => TinyModels.LlamaConfig with { TieWordEmbeddings = false, NumKeyValueHeads = 1, AttentionBias = true, MlpBias = true },
        "opt" => TinyModels.OptConfig,
        "opt-postln-projected" => TinyModels.OptConfig with { DoLayerNormBefore = false, WordEmbedProjDim = 16 },
        "opt-no-bias-no-affine" => TinyModels.OptConfig with { EnableBias = false, LayerNormElementwiseAffine = false },
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void The_count_from_the_config_equals_the_built_models_parameters(string name)
    {
        var config = Config(name);
        using var model = PretrainedModel.Create(config);
        var parameters = model.parameters().ToList();
        var count = ParameterCount.Of(config);
        Assert.Equal(parameters.Where(p => p.dim() >= 2).Sum(p => p.numel()), count.Matrices);
        Assert.Equal(parameters.Where(p => p.dim() < 2).Sum(p => p.numel()), count.Vectors);
        Assert.Equal(parameters.Sum(p => p.numel() * p.element_size()), count.Bytes(ScalarType.Float32));
    }

    [Fact]
    public void The_papers_models_have_their_published_sizes()
    {
        // meta-llama/Llama-2-7b-hf and facebook/opt-1.3b, as transformers' num_parameters() reports them.
        Assert.Equal(6_738_415_616L, ParameterCount.Of(LlamaConfig.Llama2_7B).Total);
        Assert.Equal(1_315_758_080L, ParameterCount.Of(OptConfig.Opt1_3b).Total);
    }

    /// <summary>transformers' num_parameters() of each family's published checkpoint (Hub model cards).</summary>
    [Theory]
    [InlineData("llama-3.2-1b", 1_235_814_400L)]
    [InlineData("qwen2.5-0.5b", 494_032_768L)]
    [InlineData("qwen3-0.6b", 596_049_920L)]
    [InlineData("mistral-7b-v0.3", 7_248_023_552L)]
    [InlineData("gemma-2b", 2_506_172_416L)]
    [InlineData("phi-3-mini-4k", 3_821_079_552L)]
    public void Each_familys_published_model_has_its_published_size(string name, long size)
    {
        var config = FamilyConfigs.Published[name];
        Assert.Equal(size, ParameterCount.Of(config).Total);
        using var model = PretrainedModel.Create(config, device: new TorchSharp.torch.Device(TorchSharp.DeviceType.META));
        Assert.Equal(size, model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void A_model_larger_than_the_budget_is_refused_before_it_is_allocated()
    {
        // A child process: the budget is an environment setting, and other tests of this process build models.
        var (exit, _, error) = CliProcess.Run(["bench", "--shape", "llama-2-7b", "--base-dtype", "bf16"],
            new Dictionary<string, string> { [ChainLora.Runtime.MemoryBudget.Variable] = "2GiB" });
        Assert.Equal(2, exit);
        Assert.Contains("a model of 6.74B parameters in bf16 needs 12.6 GiB but 2.0 GiB is available (CHAINLORA_MEMORY_BUDGET)", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void A_batch_whose_activations_cannot_fit_is_refused_before_its_ids_are_drawn()
    {
        var (exit, _, error) = CliHarness.Run("bench", "--shape", "tiny260k", "--batch", "100000000");
        Assert.Equal(2, exit);
        Assert.Contains("--batch 100000000 --seq 256 (25600000000 tokens", error);
        Assert.Contains("is available", error);
    }
}
