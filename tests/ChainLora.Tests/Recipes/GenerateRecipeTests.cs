using ChainLora.Loading;
using ChainLora.Recipes;

namespace ChainLora.Tests.Recipes;

/// <summary>
/// The generation recipe on the pretrained stories260K: the text llama2.c's run.c writes (greedy),
/// the same text `chainlora generate` prints, and the new-token budget cut to the context's room.
/// </summary>
public class GenerateRecipeTests
{
    const string Prompt = "Once upon a time, there was a little girl";

    [Fact]
    public void The_recipe_text_is_run_c_greedy_text_and_what_the_cli_prints()
    {
        var model = SharedData.Require("models/stories260K");
        var result = GenerateRecipe.Run(new GenerateRecipeOptions { Model = model, Prompt = Prompt, MaxNewTokens = 12 },
            stop: TestContext.Current.CancellationToken);
        // llama2.c's run.c continues this prompt greedily with these words (Stories260KTests pins the longer text).
        Assert.StartsWith(Prompt + " named Lily. She loved to play", result.Text);
        Assert.Equal(12, result.NewIds.Count);
        Assert.Equal(12, result.MaxNewTokens);
        Assert.False(result.Stopped);
        var (exit, output, error) = CliHarness.Run("generate", "--model", model, "--prompt", Prompt, "--max-new-tokens", "12");
        Assert.True(exit == 0, error);
        Assert.Equal(result.Text + Environment.NewLine, output);
    }

    [Fact]
    public void The_budget_is_cut_to_the_room_the_prompt_leaves_and_a_full_context_is_refused()
    {
        using var loaded = PretrainedModel.Load(SharedData.Require("models/stories260K"));
        var context = loaded.Model.MaxPositions;
        // A prompt a few tokens short of the context: 64 new tokens would run past it.
        var words = new List<string>();
        while (loaded.Tokenizer.Encode(string.Join(" ", words), addBos: true).Count < context - 5) words.Add("the cat sat");
        var prompt = string.Join(" ", words);
        var room = context - loaded.Tokenizer.Encode(prompt, addBos: true).Count;
        Assert.InRange(room, 1, 5);
        var result = GenerateRecipe.Run(loaded, new GenerateRecipeOptions { Prompt = prompt, MaxNewTokens = 64 }, TestContext.Current.CancellationToken);
        Assert.Equal(room, result.MaxNewTokens);
        Assert.InRange(result.NewIds.Count, 0, room);
        Assert.Equal(context - room, result.PromptIds.Count);

        var full = prompt + " the cat sat the cat sat";
        var tokens = loaded.Tokenizer.Encode(full, addBos: true).Count;
        var refused = Assert.Throws<ArgumentException>(() => GenerateRecipe.Run(loaded, new GenerateRecipeOptions { Prompt = full }, TestContext.Current.CancellationToken));
        Assert.Equal($"--prompt has {tokens} tokens, the model's context is {context}", refused.Message);
    }

    [Theory]
    [InlineData(0, 0.0, "max new tokens 0: must be at least 1")]
    [InlineData(4, -1.0, "temperature -1: must be a number >= 0")]
    public void Bad_settings_are_refused_before_anything_loads(int maxNew, double temperature, string message)
    {
        var options = new GenerateRecipeOptions { Model = "/nonexistent/model", Prompt = "hi", MaxNewTokens = maxNew, Temperature = temperature };
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => GenerateRecipe.Run(options, stop: TestContext.Current.CancellationToken)).Message);
    }
}
