using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Recipes;
using ChainLora.Training;

namespace ChainLora.Tests.Recipes;

/// <summary>The library's defaults are the method's: asking for COLA gives a chain, not plain LoRA.</summary>
public sealed class TrainRecipeDefaultsTests : TempFolderTest
{
    [Fact]
    public void COLA_through_the_recipe_without_a_chain_length_trains_the_papers_three_links()
    {
        var result = TrainRecipe.Run(new TrainRecipeOptions
        {
            Model = SharedData.Require("models/stories260K"),
            Task = "lm",
            Data = SharedData.Require("corpus/tinyshakespeare.txt"),
            Sizes = new ChainLora.Tasks.SampleSizes(24, 0, 8),
            Context = 32,
            Trainer = new TrainerOptions { Method = TrainingMethod.Cola, Epochs = 3, LearningRate = 1e-3 },
            OutDir = PathIn("cola"),
        });
        Assert.Equal(3, result.Training.Links.Count);
        Assert.Equal(3, (int)result.Hyperparameters["chain_length"]!);
    }

    [Theory]
    [InlineData(TrainingMethod.Cola, 3)]
    [InlineData(TrainingMethod.Lora, 1)]
    [InlineData(TrainingMethod.Full, 1)]
    public void The_trainer_gives_a_chain_without_a_length_the_methods_own(TrainingMethod method, int links)
    {
        using var model = TinyModels.Llama();
        var trainer = new ChainTrainer(model, new TrainerOptions { Method = method, Epochs = 3 }, new LoraConfig(), new ChainConfig());
        trainer.Train(new RandomLmData(2));
        Assert.Equal(links, trainer.Schedule!.MaxLinks);
        // Given, a length is kept: COLA of one link is plain LoRA by request.
        Assert.Equal(1, new TrainerOptions { Method = TrainingMethod.Cola }.ResolveChain(new ChainConfig { Length = 1 }).Links);
    }

    [Fact]
    public void An_unresolved_chain_says_so_instead_of_guessing()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new ChainConfig().Links);
        Assert.StartsWith("chain length not resolved", e.Message);
        var ranks = Assert.Throws<ArgumentException>(() => new TrainRecipeOptions
        {
            Task = "lm", Data = "x", Trainer = new TrainerOptions { Method = TrainingMethod.Cola }, Chain = new ChainConfig { Ranks = [8, 4, 2, 1] },
        }.Validate());
        Assert.Equal("ranks [8,4,2,1]: give 1 to 3 ranks for a chain of 3", ranks.Message);
    }
}
