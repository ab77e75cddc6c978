using System.Text.Json;
using ChainLora.Chain;
using ChainLora.IO;
using ChainLora.Lora;
using ChainLora.Models;
using ChainLora.Training;
using static TorchSharp.torch;

namespace ChainLora.Tests.Training;

/// <summary>
/// <see cref="ChainTrainer"/> against an independent PyTorch reference (scripts/make_training_reference.py,
/// torch's AdamW, transformers' linear schedule, PEFT's LoRA forward and merge): the tiny llama-gqa
/// checkpoint trained with LoRA on q_proj, v_proj and down_proj (r 4, alpha 6) for 8 steps, as one link
/// and as a 2-link COLA chain, every link starting from the A the fixture gives (B = 0). Losses are of
/// order 4 and weights of order 0.2, in fp32: agreement to 1e-5 relative and 1e-6 absolute leaves room
/// for kernels summing in another order, and none for a wrong rate, moment or merge.
/// </summary>
public class TorchReferenceTrainingTests
{
    const double LossTolerance = 1e-5;     // relative, per step
    const double WeightTolerance = 1e-6;   // absolute, merged frozen weights
    const double FactorTolerance = 1e-5;   // absolute, final A and B (entries of order 0.01 to 0.2)

    static readonly JsonElement Reference = Fixtures.Json(Path.Combine(Fixtures.Reference("training"), "expected.json"));

    /// <summary>What a run leaves: its step losses, the adapted layers' frozen weights and the live link's A and B (CPU copies).</summary>
    sealed record Outcome(IReadOnlyList<double> Losses, Dictionary<string, Tensor> Weights, Dictionary<string, (Tensor A, Tensor B)> Factors,
        IReadOnlyList<int> LinksStarted);

    static TrainerOptions Options(JsonElement run) => new()
    {
        Method = EnumNames.Parse<TrainingMethod>(run.GetProperty("method").GetString()!, "method"),
        LearningRate = Reference.GetProperty("learning_rate").GetDouble(),
        Epochs = Reference.GetProperty("epochs").GetInt32(),
        WeightDecay = run.GetProperty("weight_decay").GetDouble(),
        MaxGradNorm = run.GetProperty("max_grad_norm").GetDouble(),
        GradientAccumulation = run.GetProperty("accumulation").GetInt32(),
    };

    static Outcome Train(string name, Func<TrainerOptions, TrainerOptions>? change = null)
    {
        var run = Reference.GetProperty("runs").GetProperty(name);
        var dir = Fixtures.Reference(Reference.GetProperty("model").GetString()!);
        using var model = new LlamaForCausalLM(LlamaConfig.FromFile(Path.Combine(dir, "config.json")));
        StateDict.LoadStrict(model, SafeTensors.Load(Path.Combine(dir, "model.safetensors")), dir);
        var lora = new LoraConfig
        {
            Rank = Reference.GetProperty("rank").GetInt32(),
            Alpha = Reference.GetProperty("alpha").GetDouble(),
            TargetModules = [.. Reference.GetProperty("targets").EnumerateArray().Select(t => t.GetString()!)],
        };
        var initialA = Reference.GetProperty("initial_a").EnumerateArray().ToList();
        var started = new List<int>();
        var options = Options(run);
        var trainer = new ChainTrainer(model, change?.Invoke(options) ?? options, lora, new ChainConfig { Length = run.GetProperty("links").GetInt32() })
        {
            OnLinkStart = (link, adapters) =>
            {
                started.Add(link.Index);
                adapters.LoadFactors(adapters.Layers.ToDictionary(l => l.Key,
                    l => (Fixtures.Floats2(initialA[link.Index].GetProperty(l.Key)), zeros_like(l.Value.B))));
            },
        };
        var batches = Reference.GetProperty("batches").EnumerateArray().Select(Fixtures.Ints).ToList();
        var result = trainer.Train(new FixedLmData(batches));
        var layers = trainer.Adapters!.Layers;
        return new Outcome(result.StepLosses,
            layers.ToDictionary(l => l.Key, l => l.Value.Base.Weight.detach().clone()),
            layers.ToDictionary(l => l.Key, l => (l.Value.A.detach().clone(), l.Value.B.detach().clone())), started);
    }

    static double[] ReferenceLosses(string run) =>
        [.. Reference.GetProperty("runs").GetProperty(run).GetProperty("losses").EnumerateArray().Select(x => x.GetDouble())];

    /// <summary>The largest |ours / reference - 1| over the steps; the step counts must agree.</summary>
    static double LossDeparture(IReadOnlyList<double> ours, double[] reference)
    {
        Assert.Equal(reference.Length, ours.Count);
        return ours.Zip(reference, (o, r) => Math.Abs(o / r - 1)).Max();
    }

    static double FactorDeparture(Outcome outcome, string run)
    {
        var final = Reference.GetProperty("runs").GetProperty(run).GetProperty("final");
        Assert.Equal(final.EnumerateObject().Select(p => p.Name).Order(), outcome.Factors.Keys.Order());
        return outcome.Factors.Max(f => Math.Max(
            Fixtures.MaxAbsDiff(f.Value.A, Fixtures.Floats2(final.GetProperty(f.Key).GetProperty("A"))),
            Fixtures.MaxAbsDiff(f.Value.B, Fixtures.Floats2(final.GetProperty(f.Key).GetProperty("B")))));
    }

    static void Report(string text) => TestContext.Current.TestOutputHelper?.WriteLine(text);

    [Theory]
    [InlineData("lora")]
    [InlineData("lora-decay-clip-accumulate")]
    public void Lora_steps_match_the_reference(string run)
    {
        var outcome = Train(run);
        var losses = LossDeparture(outcome.Losses, ReferenceLosses(run));
        var factors = FactorDeparture(outcome, run);
        Report($"{run}: max relative loss departure {losses:E2}, max |ΔA|, |ΔB| {factors:E2}");
        Assert.True(losses < LossTolerance, $"{run}: step losses depart from the reference by up to {losses:E2} (relative)");
        Assert.True(factors < FactorTolerance, $"{run}: final A and B depart from the reference by up to {factors:E2}");
        Assert.Equal(new[] { 0 }, outcome.LinksStarted);
    }

    [Fact]
    public void A_cola_chain_matches_the_reference_through_its_knot()
    {
        var outcome = Train("cola");
        var losses = LossDeparture(outcome.Losses, ReferenceLosses("cola"));
        var merged = Reference.GetProperty("runs").GetProperty("cola").GetProperty("merged_after_knots").EnumerateArray().Single();
        Assert.Equal(merged.EnumerateObject().Select(p => p.Name).Order(), outcome.Weights.Keys.Order());
        var weights = outcome.Weights.Max(w => Fixtures.MaxAbsDiff(w.Value, Fixtures.Floats2(merged.GetProperty(w.Key))));
        var factors = FactorDeparture(outcome, "cola");
        Report($"cola: max relative loss departure {losses:E2}, max |ΔW| after the knot {weights:E2}, max |ΔA|, |ΔB| {factors:E2}");
        Assert.True(losses < LossTolerance, $"cola: step losses depart from the reference by up to {losses:E2} (relative)");
        Assert.True(weights < WeightTolerance, $"cola: merged weights depart from the reference by up to {weights:E2}");
        Assert.True(factors < FactorTolerance, $"cola: the second link's final A and B depart from the reference by up to {factors:E2}");
        Assert.Equal(new[] { 0, 1 }, outcome.LinksStarted);
    }

    [Fact]
    public void The_comparison_notices_a_one_percent_rate_change_and_an_optimizer_kept_across_the_knot()
    {
        var faster = LossDeparture(Train("lora", o => o with { LearningRate = o.LearningRate * 1.01 }).Losses, ReferenceLosses("lora"));
        // ReLoRA's pruning of a vanishing fraction: the knot keeps the optimizer's moments and step count.
        var kept = LossDeparture(Train("cola", o => o with { OptimizerPruneFraction = 1e-9 }).Losses, ReferenceLosses("cola"));
        Report($"rate x 1.01: {faster:E2}; optimizer kept across the knot: {kept:E2}");
        Assert.True(faster > 10 * LossTolerance, $"a 1% faster rate departs by only {faster:E2}");
        Assert.True(kept > 10 * LossTolerance, $"keeping the optimizer across the knot departs by only {kept:E2}");
    }
}
