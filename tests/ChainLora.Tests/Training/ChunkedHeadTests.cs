using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Training;

/// <summary>The chunked head + cross-entropy gives the gradients of the plain loss.</summary>
public class ChunkedHeadTests
{
    static (double Loss, Dictionary<string, Tensor> Grads) Gradients(Func<LlamaForCausalLM, LmBatch, double> backward, int vocab, long chunkElements)
    {
        manual_seed(5);
        var model = new LlamaForCausalLM(TinyModels.LlamaConfig with { VocabSize = vocab }, ScalarType.Float32);
        var adapters = LoraAdapters.Inject(model, new LoraConfig { Rank = 4, Alpha = 8 });
        using (no_grad())
            foreach (var layer in adapters.Layers.Values) layer.B.normal_(0, 0.05);
        using var g = new Generator(11);
        var ids = randint(3, vocab, [3, 61], generator: g, dtype: ScalarType.Int64);
        var targets = ids[.., 1..].clone();
        targets[0, ..7] = tensor(-100L);                                    // some unmarked positions
        var batch = new LmBatch(ids[.., ..^1], targets, headChunkElements: chunkElements);
        var loss = backward(model, batch);
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        return (loss, grads);
    }

    [Fact]
    public void Chunked_backward_equals_the_plain_loss_backward()
    {
        const int vocab = 32000;
        var rows = 3 * 60 - 7;
        Compare(vocab, rows, 64L * vocab);                                  // 64 rows a chunk: 3 chunks, the last partial
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(40.0)] // most probabilities below the fp32 range: the clamped exponents must not show
    public void Fused_cross_entropy_gradient_equals_autograd(double logitScale)
    {
        using var g = new Generator(3);
        var logits = randn([37, 1000], generator: g).mul_(logitScale);
        var targets = randint(0, 1000, [37], generator: g, dtype: ScalarType.Int64);
        const double coefficient = 0.25 / 37;

        var reference = logits.clone().requires_grad_(true);
        var loss = nn.functional.cross_entropy(reference, targets, reduction: nn.Reduction.Sum).mul(coefficient);
        loss.backward();

        var fused = logits.clone();
        double fusedLoss = LmBatch.CrossEntropyIntoGradient(fused, targets, coefficient).item<float>();
        Assert.Equal(loss.item<float>(), fusedLoss, 1e-4 * Math.Max(1, Math.Abs(fusedLoss)));
        var diff = (fused - reference.grad!).abs().max().item<float>();
        Assert.True(diff <= 1e-7, $"max |Δgrad| = {diff:E2}");
        Assert.True(fused.sum(1).abs().max().item<float>() <= 1e-6, "each row of softmax - onehot sums to zero");
    }

    static void Compare(int vocab, int rows, long chunkElements)
    {
        Assert.True(LmBatch.HeadChunkRows(vocab, chunkElements) < rows, "the batch must span several chunks");
        var (plainLoss, plain) = Gradients((m, b) =>
        {
            var loss = b.Loss(m).mul(0.5);
            loss.backward();
            return loss.item<float>();
        }, vocab, chunkElements);
        var (chunkedLoss, chunked) = Gradients((m, b) => b.Backward(m, 0.5), vocab, chunkElements);

        Assert.Equal(plainLoss, chunkedLoss, 1e-5);
        Assert.Equal(plain.Keys.Order(), chunked.Keys.Order());
        Assert.Contains(plain.Keys, k => k.EndsWith("lora_A", StringComparison.Ordinal));
        foreach (var (name, grad) in plain)
        {
            var scale = grad.abs().max().item<float>();
            var diff = (grad - chunked[name]).abs().max().item<float>();
            Assert.True(scale > 0, $"{name}: no gradient");
            Assert.True(diff <= 1e-5 * scale, $"{name}: max |Δgrad| = {diff:E2} of {scale:E2}");
        }
    }
}
