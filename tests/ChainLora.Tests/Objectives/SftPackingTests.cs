using ChainLora.Evaluation;
using ChainLora.Models;
using ChainLora.Objectives;
using ChainLora.Tasks;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Objectives;

/// <summary>
/// --pack: examples share rows, and the example numbers in the attention mask keep attention and
/// positions inside each example, so a packed batch gives every example the loss it has alone.
/// </summary>
public sealed class SftPackingTests
{
    /// <summary>Random ids (3..63) of <paramref name="length"/> tokens, the loss on the last <paramref name="response"/>.</summary>
    static SftEncoded Example(long seed, int length, int response)
    {
        var ids = TinyModels.Tokens(seed, 1, length).data<long>().Select(x => (int)x).ToArray();
        return new SftEncoded(ids, [.. Enumerable.Range(0, length).Select(i => i >= length - response)], 0);
    }

    static readonly SftEncoded[] Examples = [Example(1, 9, 4), Example(2, 14, 6), Example(3, 5, 2), Example(4, 11, 11)];

    /// <summary>NLL summed over each example's marked tokens: per example alone, or all in one packed row.</summary>
    static double[] SummedNll(CausalLM model, Tensor input, Tensor targets, Tensor? mask, IReadOnlyList<(int Row, int Start, int Count)> spans)
    {
        using var _ = no_grad();
        var logits = model.Forward(input, mask);                                             // (B, T, V)
        var nll = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.reshape(-1), ignore_index: MarkedPositions.Ignore,
            reduction: nn.Reduction.None).view(targets.shape).data<float>().ToArray();
        var width = (int)targets.shape[1];
        return [.. spans.Select(s => Enumerable.Range(s.Start, s.Count).Sum(t => (double)nll[s.Row * width + t]))];
    }

    static double[] Alone(CausalLM model) => [.. Examples.Select(e =>
    {
        var (input, targets) = ResponseLoss.Tensors([e], CPU, padId: 0);
        return SummedNll(model, input, targets, null, [(0, 0, e.InputIds.Length - 1)])[0];
    })];

    static (Tensor Input, Tensor Targets, Tensor Numbers, List<(int, int, int)> Spans) OneRow()
    {
        var row = new PackedRow(Examples);
        var (input, targets, numbers) = SftPacking.Tensors([row], CPU, padId: 0);
        var spans = new List<(int, int, int)>();
        var at = 0;
        foreach (var e in Examples)
        {
            spans.Add((0, at, e.InputIds.Length - 1));
            at += e.InputIds.Length - 1;
        }
        return (input, targets, numbers, spans);
    }

    public static TheoryData<string> Families => ["llama", "opt", "mistral window 4", "qwen3"];

    static CausalLM Model(string family)
    {
        manual_seed(5);
        return family switch
        {
            "llama" => TinyModels.Llama(),
            "opt" => TinyModels.Opt(),
            "mistral window 4" => new LlamaForCausalLM(TinyModels.LlamaConfig with { ModelType = "mistral", SlidingWindow = 4 }),
            "qwen3" => new LlamaForCausalLM(TinyModels.LlamaConfig with { ModelType = "qwen3", HeadDim = 8 }),
            _ => throw new ArgumentException(family),
        };
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void A_packed_row_gives_each_example_the_loss_it_has_alone(string family)
    {
        using var model = Model(family);
        var alone = Alone(model);
        var (input, targets, numbers, spans) = OneRow();
        var packed = SummedNll(model, input, targets, numbers, spans);
        for (var i = 0; i < alone.Length; i++) Assert.Equal(alone[i], packed[i], 4);
        Assert.True(alone.Max(Math.Abs) > 1, "the losses compared are not trivially small");

        // Without the example numbers (plain causal attention over the row) the later examples see the
        // earlier ones and start at later positions: their losses change. This is what the mask prevents.
        // (Under a sliding window of 4 the 14-token example's response lies beyond the reach of the one before.)
        var crossed = SummedNll(model, input, targets, null, spans);
        Assert.Equal(alone[0], crossed[0], 4);
        Assert.True(Enumerable.Range(1, alone.Length - 1).Count(i => Math.Abs(alone[i] - crossed[i]) > 1e-3) >= (family.Contains("window") ? 2 : 3),
            $"alone {string.Join(", ", alone)}; crossing {string.Join(", ", crossed)}");
    }

    [Fact]
    public void A_packed_batch_has_the_unpacked_batch_loss_and_gradients()
    {
        using var model = TinyModels.Llama();
        var unpacked = Assert.Single(TaskTrainingData.Sft(Examples, batchSize: 4, seed: 0, CPU, padId: 0).Epoch(0));
        var packed = Assert.Single(TaskTrainingData.Packed(SftPacking.Pack(Examples, capacity: 24), batchSize: 4, seed: 0, CPU, padId: 0).Epoch(0));
        Assert.Equal(2, packed.Tokens / packed.SequenceLength);   // 35 positions in 2 rows of up to 24

        double Run(TrainingBatch batch, out Tensor gradient)
        {
            model.zero_grad();
            var loss = batch.Backward(model, 1.0);
            gradient = cat([.. model.parameters().Where(p => p.grad is not null).Select(p => p.grad!.flatten())]);
            return loss;
        }
        var lossUnpacked = Run(unpacked, out var gradUnpacked);
        var lossPacked = Run(packed, out var gradPacked);
        Assert.Equal(lossUnpacked, lossPacked, 5);
        Assert.True(gradUnpacked.allclose(gradPacked, rtol: 1e-4, atol: 1e-6));
        Assert.True(packed.Tokens < unpacked.Tokens, $"packed {packed.Tokens} positions, unpacked {unpacked.Tokens}");
    }

    [Fact]
    public void Positions_restart_at_each_example_and_padding_is_zero()
    {
        var numbers = tensor(new long[] { 1, 1, 2, 2, 2, 3, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1 }, [2, 8]);
        var positions = Positions.Of(numbers, 2, 0, 8, CPU).data<long>().ToArray();
        Assert.Equal(new long[] { 0, 1, 0, 1, 2, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5 }, positions);
        // With a cache: the positions of the last 3 tokens only.
        Assert.Equal(new long[] { 1, 2, 0, 1, 2, 3 }, Positions.Of(numbers, 2, 3, 3, CPU).data<long>().ToArray());
    }

    [Fact]
    public void Queries_see_only_earlier_keys_of_their_own_example()
    {
        var numbers = tensor(new long[] { 1, 1, 2, 2, 0 }, [1, 5]);
        var mask = AttentionPlan.Create(numbers, 0, 5, CPU).Mask!.to(ScalarType.Int64).reshape(5, 5).data<long>().ToArray();
        Assert.Equal(new long[]
        {
            1, 0, 0, 0, 0,
            1, 1, 0, 0, 0,
            0, 0, 1, 0, 0,
            0, 0, 1, 1, 0,
            0, 0, 0, 0, 1,   // padding attends to itself only
        }, mask);
    }

    [Fact]
    public void Best_fit_decreasing_places_every_example_once_within_capacity()
    {
        // Positions 8, 13, 4, 10 and 6, 3, 7: rows of 16.
        SftEncoded[] examples = [.. Examples, Example(5, 7, 3), Example(6, 4, 2), Example(7, 8, 1)];
        var rows = SftPacking.Pack(examples, capacity: 16);
        Assert.All(rows, r => Assert.InRange(r.Positions, 1, 16));
        var placed = rows.SelectMany(r => r.Examples).ToList();
        Assert.Equal(examples.Length, placed.Count);
        Assert.True(placed.ToHashSet(ReferenceEqualityComparer.Instance).SetEquals(examples));
        // 51 positions need at least 4 rows of 16; best fit reaches it: 13+3, 10+6, 8+7, 4.
        Assert.Equal(4, rows.Count);
        Assert.Equal(new[] { 16, 16, 15, 4 }, rows.Select(r => r.Positions).OrderByDescending(p => p));
        var summary = SftPacking.Summarize(rows, 16);
        Assert.Equal((7, 4, 16), (summary.Examples, summary.Rows, summary.Capacity));
        Assert.Equal(51.0 / 64, summary.Fill, 12);
    }

    [Fact]
    public void An_example_longer_than_a_row_is_refused_naming_both_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => SftPacking.Pack(Examples, capacity: 12));
        Assert.Equal("an example of 14 tokens does not fit a packed row of 12 positions", e.Message);
    }
}
