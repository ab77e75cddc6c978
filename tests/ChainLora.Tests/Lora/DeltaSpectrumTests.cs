using System.Text.Json.Nodes;
using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Training;

namespace ChainLora.Tests.Lora;

public class DeltaSpectrumTests
{
    [Fact]
    public void Effective_rank_is_the_exponential_of_the_entropy_of_the_normalised_singular_values()
    {
        Assert.Equal(4, DeltaSpectrum.EffectiveRank([2, 2, 2, 2]), 12);
        Assert.Equal(1, DeltaSpectrum.EffectiveRank([5, 0, 0]), 12);
        // p = (3/4, 1/4): exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = 1.7547654...
        Assert.Equal(1.7547654, DeltaSpectrum.EffectiveRank([3, 1]), 6);
        Assert.Equal(0, DeltaSpectrum.EffectiveRank([0, 0]));
    }

    [Fact]
    public void Each_knot_records_the_accumulated_delta_and_a_chain_of_rank_2_links_exceeds_rank_2()
    {
        // 3 links of rank 2 over 6 epochs of 4 steps; every knot logs each layer's spectrum of sum_i (alpha/r) B_i A_i.
        var dir = Directory.CreateTempSubdirectory("spectrum").FullName;
        try
        {
            using var model = TinyModels.Llama();
            var log = Path.Combine(dir, "train_log.jsonl");
            var trainer = new ChainTrainer(model, new TrainerOptions { Method = TrainingMethod.Cola, LearningRate = 1e-2, Epochs = 6, Seed = 2, RecordDeltaSpectra = true },
                new LoraConfig { Rank = 2 }, new ChainConfig { Length = 3 }, new RunPlumbing { LogPath = log });
            var result = trainer.Train(new RandomLmData(4));
            var lines = File.ReadLines(log).Select(l => JsonNode.Parse(l)!).Where(n => n["delta"] is JsonObject).ToList();
            Assert.Equal(["knot", "knot", "spectrum"], lines.Select(n => (string)n["event"]!));
            static int Rank(JsonNode layer)
            {
                var values = layer["singular_values"]!.AsArray().Select(v => (double)v!).ToList();
                return values.Count(v => v > 1e-6 * values[0]);
            }
            // After link k the delta has rank at most 2k, and the chain's final delta goes beyond one link's rank 2.
            for (var k = 0; k < 3; k++)
                Assert.All(lines[k]["delta"]!["layers"]!.AsArray(), layer => Assert.InRange(Rank(layer!), 1, 2 * (k + 1)));
            Assert.Contains(lines[2]["delta"]!["layers"]!.AsArray(), layer => Rank(layer!) > 2);
            // result.json's per-link value is the log's mean over layers, and it equals an independent recomputation at the end.
            Assert.Equal(lines.Select(n => (double)n["delta"]!["effective_rank"]!), result.Links.Select(l => l.DeltaEffectiveRank!.Value));
            var final = DeltaSpectrum.Of(trainer.Adapters!).Average(l => l.EffectiveRank);
            Assert.Equal(final, result.Links[^1].DeltaEffectiveRank!.Value, 9);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
