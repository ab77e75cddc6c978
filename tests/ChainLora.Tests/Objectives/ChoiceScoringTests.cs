using ChainLora.Chain;
using ChainLora.Evaluation;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Objectives;
using ChainLora.Tasks;
using ChainLora.Tokenization;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Objectives;

/// <summary>Candidate scoring and the classification loss, checked against a row-by-row computation.</summary>
public class ChoiceScoringTests
{
    static PromptAndContinuation Row(int[] prompt, int[] option) => new(prompt, option);

    /// <summary>Mean log-probability of <paramref name="option"/> after <paramref name="prompt"/>, from one unpadded forward pass.</summary>
    static double Reference(CausalLM model, int[] prompt, int[] option)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        int[] sequence = [.. prompt, .. option];
        var logits = model.Forward(tensor(sequence.Select(x => (long)x).ToArray(), [1, sequence.Length]));   // (1, T, V)
        var logProbs = nn.functional.log_softmax(logits[0], -1);
        double sum = 0;
        for (var j = 0; j < option.Length; j++)
            sum += logProbs[prompt.Length + j - 1, option[j]].item<float>();
        return sum / option.Length;
    }

    static readonly EncodedChoice[] Examples =
    [
        new([Row([1, 5, 6, 7, 8], [20]), Row([1, 5, 6, 7, 8], [21, 22, 23])], [1]),
        new([Row([1, 9, 10], [30, 31]), Row([1, 9, 10], [32]), Row([1, 9, 10], [33, 34, 35, 36])], [2]),
    ];

    [Fact]
    public void Right_padded_batches_score_like_each_row_alone()
    {
        using var model = TinyModels.Llama(seed: 3);
        model.eval();
        var rows = Examples.SelectMany(e => e.Candidates).ToList();
        var batched = ContinuationScoring.Score(model, rows, batchTokens: 4096);
        var oneByOne = ContinuationScoring.Score(model, rows, batchTokens: 1);
        for (var i = 0; i < rows.Count; i++)
        {
            var expected = Reference(model, [.. rows[i].Prompt], [.. rows[i].Continuation]);
            Assert.Equal(expected, batched[i], 5);
            Assert.Equal(expected, oneByOne[i], 5);
        }
    }

    [Fact]
    public void Choice_loss_is_cross_entropy_over_mean_option_log_probabilities()
    {
        using var model = TinyModels.Llama(seed: 4);
        model.eval();
        double expected = 0;
        foreach (var example in Examples)
        {
            var logits = example.Candidates.Select(c => Reference(model, [.. c.Prompt], [.. c.Continuation])).ToList();
            var logSumExp = Math.Log(logits.Sum(Math.Exp));
            expected += (logSumExp - logits[example.Label]) / Examples.Length;
        }
        using var scope = NewDisposeScope();
        var batch = ChoiceBatch.Create(Examples, CPU);
        Assert.Equal([2, 3], batch.Slots.shape);
        Assert.Equal(expected, batch.Loss(model).item<float>(), 5);
    }

    /// <summary>The examples above with each example's candidates holding one prompt instance, as PromptEncoder makes them.</summary>
    static EncodedChoice[] SharingPrompts(EncodedChoice[] examples) =>
        examples.Select(e => new EncodedChoice(e.Candidates.Select(c => new PromptAndContinuation(e.Candidates[0].Prompt, c.Continuation)).ToList(), e.Correct)).ToArray();

    [Fact]
    public void Shared_prompts_give_the_whole_row_loss_and_gradients()
    {
        EncodedChoice[] examples = [.. Examples, new([Row([1, 40], [41]), Row([1, 40], [42, 43])], [0])];
        (double Loss, Dictionary<string, Tensor> Grads, bool Shares) Run(EncodedChoice[] batchExamples)
        {
            using var model = TinyModels.Llama(seed: 6);
            var adapters = LoraAdapters.Inject(model, new LoraConfig { Rank = 4, Alpha = 8 });
            using (no_grad())
                foreach (var layer in adapters.Layers.Values) layer.B.normal_(0, 0.05);
            var batch = ChoiceBatch.Create(batchExamples, CPU);
            var loss = batch.Loss(model);
            loss.backward();
            var grads = adapters.TrainableParameters().Select((p, i) => (i, p.grad!.clone())).ToDictionary(x => x.i.ToString(), x => x.Item2);
            return (loss.item<float>(), grads, batch.SharesPrompts);
        }
        var whole = Run(examples);
        var shared = Run(SharingPrompts(examples));
        Assert.False(whole.Shares);
        Assert.True(shared.Shares);
        Assert.Equal(whole.Loss, shared.Loss, 5);
        foreach (var (name, grad) in whole.Grads)
        {
            var scale = grad.abs().max().item<float>();
            var diff = (grad - shared.Grads[name]).abs().max().item<float>();
            Assert.True(scale > 0, $"parameter {name}: no gradient");
            Assert.True(diff <= 1e-4 * scale, $"parameter {name}: max |Δgrad| = {diff:E2} of {scale:E2}");
        }
    }

    [Fact]
    public void Training_as_classification_raises_the_right_candidates_score()
    {
        using var model = TinyModels.Llama(seed: 5);
        var data = new TaskTrainingData<EncodedChoice>(Examples, batchSize: 2, seed: 0, batch => ChoiceBatch.Create(batch, CPU));
        var trainer = new ChainTrainer(model, new TrainerOptions { LearningRate = 1e-2, Epochs = 30, Seed = 1 }, new LoraConfig(), new ChainConfig());
        var result = trainer.Train(data);
        Assert.True(result.StepLosses[^1] < 0.5 * result.StepLosses[0], $"loss {result.StepLosses[0]} -> {result.StepLosses[^1]}");
    }

    [Fact]
    public void Epochs_visit_every_example_once_in_a_seeded_order()
    {
        var items = Enumerable.Range(0, 10).ToList();
        List<int> Order(int epoch, long seed)
        {
            var seen = new List<int>();
            var data = new TaskTrainingData<int>(items, 3, seed, batch => { seen.AddRange(batch); return new Marker(); });
            Assert.Equal(4, data.BatchesPerEpoch);
            Assert.Equal(4, data.Epoch(epoch).Count());
            return seen;
        }
        Assert.Equal(items, Order(0, 1).Order());
        Assert.Equal(Order(0, 1), Order(0, 1));
        Assert.NotEqual(Order(0, 1), Order(1, 1));
    }

    sealed class Marker : TrainingBatch
    {
        public override Tensor Loss(CausalLM model) => throw new NotSupportedException();
        public override long Tokens => 0;
        public override int SequenceLength => 0;
    }

    /// <summary>One id per character (3 + code % 60), BOS 1, EOS 2: lengths are easy to reason about.</summary>
    sealed class CharTokenizer : ITextTokenizer
    {
        public int VocabSize => 64;
        public int BosId => 1;
        public int EosId => 2;
        public int PadId => 0;
        public IReadOnlyList<int> Encode(string text, bool addBos) => [.. addBos ? [BosId] : Array.Empty<int>(), .. EncodeContinuation(text)];
        public IReadOnlyList<int> EncodeContinuation(string text) => text.Select(c => 3 + c % 60).ToList();
        public string Decode(IEnumerable<int> ids) => new(ids.Where(i => i >= 3).Select(i => (char)('a' + (i - 3) % 26)).ToArray());
    }

    [Fact]
    public void Over_long_prompts_lose_their_oldest_tokens_but_keep_bos()
    {
        var tokenizer = new CharTokenizer();
        var encoder = new PromptEncoder(tokenizer, maxPositions: 16);
        var prompt = new string('x', 10) + "0123456789";
        var choice = encoder.Choice(new ChoiceExample(prompt, ["ab", "abcd"], 1));
        var ids = choice.Candidates[0].Prompt;
        Assert.Equal(16 - 4, ids.Count);                                     // room for the longest option
        Assert.Equal(tokenizer.BosId, ids[0]);
        Assert.Equal(tokenizer.EncodeContinuation(prompt).TakeLast(11), ids.Skip(1));
        Assert.All(choice.Candidates, c => Assert.True(c.Length <= 16));
        Assert.Same(ids, choice.Candidates[1].Prompt);

        var shortPrompt = encoder.Choice(new ChoiceExample("hi", ["ab"], 0)).Candidates[0].Prompt;
        Assert.Equal(tokenizer.Encode("hi", addBos: true), shortPrompt);

        var target = encoder.Target(new AnswerExample(prompt, " abc\n", ["abc"]));
        Assert.Equal(16, target.Length);
        Assert.Equal(tokenizer.BosId, target.Prompt[0]);
        Assert.Equal(tokenizer.EncodeContinuation(" abc\n"), target.Continuation);
    }

    [Fact]
    public void In_context_demonstrations_are_truncated_oldest_first()
    {
        var tokenizer = new CharTokenizer();
        var encoder = new PromptEncoder(tokenizer, maxPositions: 32);
        var demonstrations = new[] { new ChoiceExample("first demo", [" A", " B"], 0), new ChoiceExample("second", [" A", " B"], 1) };
        var text = PromptEncoder.WithDemonstrations("test prompt", demonstrations);
        Assert.Equal("first demo A\n\nsecond B\n\ntest prompt", text);
        var ids = encoder.Choice(new ChoiceExample("test prompt", [" A", " B"], 0), text).Candidates[0].Prompt;
        Assert.Equal(30, ids.Count);
        Assert.Equal(tokenizer.EncodeContinuation(text).TakeLast(29), ids.Skip(1));
    }
}
