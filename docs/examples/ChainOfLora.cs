// A console program: `dotnet add package ChainLora`, then `dotnet run -- MODEL_DIR TEXT_FILE`.
using ChainLora.Chain;
using ChainLora.Recipes;
using ChainLora.Tasks;
using ChainLora.Training;

var (model, text) = (args[0], args[1]);   // a Hugging Face or llama2.c folder; a plain-text file
var result = TrainRecipe.Run(new TrainRecipeOptions
{
    Model = model, Task = "lm", Data = text, OutDir = "runs/lm-cola",
    Sizes = new SampleSizes(Train: 16, Dev: 4, Eval: 8), BatchSize = 4,
    Trainer = new TrainerOptions { Method = TrainingMethod.Cola, LearningRate = 3e-3, Epochs = 2 },
    Chain = new ChainConfig { Length = 2, Ranks = [8, 4] },   // two links: rank 8, then rank 4
});
foreach (var link in result.Training.Links) Console.WriteLine($"link {link.Link}: rank {link.Rank}, mean loss {link.MeanLoss:F4}");
Console.WriteLine($"test NLL per token {result.Test["nll_per_token"]:F4}");
