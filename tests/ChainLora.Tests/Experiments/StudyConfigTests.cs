using ChainLora.Experiments;
using ChainLora.Tasks;

namespace ChainLora.Tests.Experiments;

/// <summary>The committed configs of the second lm study (issue 22) are what their comments promise.</summary>
public class StudyConfigTests
{
    [Theory]
    [InlineData("experiments/lm2-ablations.json", 200)]
    [InlineData("experiments/lm2-converged.json", 1600)]
    public void The_lm2_grids_bracket_every_row_on_the_contiguous_split_at_context_128(string file, int numTrain)
    {
        var config = ExperimentConfig.Load(RepoFiles.Require(file));
        Assert.Equal((TextSplit.Contiguous, 128, numTrain, 8, 5), (config.Split, config.Context, config.NumTrain, config.Epochs, config.Seeds.Count));
        foreach (var method in config.Methods.Where(m => m.Kind.Trains()))
        {
            var rates = method.LearningRates ?? config.LearningRates;
            Assert.True(rates.Count >= 4, $"{method.Name}: {rates.Count} learning rates");
            // Half a decade apart: the ratio of neighbours is about sqrt(10).
            Assert.All(rates.Zip(rates.Skip(1)), p => Assert.InRange(p.Second / p.First, 2.9, 3.5));
        }
        var jobs = Grid.Expand(config, Path.Combine(Path.GetTempPath(), "lm2-never-written"));
        Assert.All(jobs, j => Assert.Equal(TextSplit.Contiguous, j.Options.Split));
        Assert.Equal(jobs.Count, jobs.Select(j => j.Id).Distinct().Count());
        // Forgetting: every cell scores the model's own domain, against the pretrained model's zero-shot row.
        Assert.Equal(("tinystories-sample.txt", 200, true), (config.SourceData, config.SourceWindows, config.DeltaSpectra));
        Assert.All(jobs.Where(j => j.Kind.HasChain()), j => Assert.True(JobRunner.TrainOptions(j).Trainer.RecordDeltaSpectra));
        Assert.Contains(config.Methods, m => m.Kind == MethodKind.ZeroShot);
        // The rank-32 reference runs under both alpha policies.
        Assert.Contains(config.Methods, m => m.Kind == MethodKind.Lora && m.Ranks is [32] && m.Alpha == 64);
        Assert.Contains(config.Methods, m => m.Kind == MethodKind.Lora && m.Ranks is [32] && m.Alpha is null && config.Alpha == 16);
        if (SharedData.Root is not null)
            foreach (var job in jobs) JobRunner.Check(job);
    }
}
