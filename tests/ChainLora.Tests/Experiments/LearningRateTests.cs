using System.Text.Json;
using ChainLora.Experiments;

namespace ChainLora.Tests.Experiments;

public class LearningRateTests
{
    static readonly double[] Grid4 = [1e-3, 3e-3, 1e-2, 3e-2];

    /// <summary>Runs of one row: each (rate, seed) with dev NLL = <paramref name="nll"/>(rate).</summary>
    static List<JobResult> Runs(IEnumerable<double> rates, IEnumerable<long> seeds, Func<double, double> nll) =>
        [.. from rate in rates from seed in seeds
            select new JobResult(new JobSpec { Method = "LoRA", Kind = MethodKind.Lora, Options = new() { Task = "lm", Data = "", Seed = seed, Trainer = new() { LearningRate = rate } } }, -nll(rate), -nll(rate), "-nll", 0, "")];

    static double Bowl(double best, double rate) => 3 + Math.Pow(Math.Log10(rate / best), 2);

    [Fact]
    public void A_choice_is_bracketed_only_inside_the_grid_with_both_neighbours_run_on_the_seeds_it_was_compared_on()
    {
        long[] seeds = [0, 1, 2];
        var interior = RateChoice.Of(Runs(Grid4, seeds, r => Bowl(1e-2, r)), 1e-2, []);
        Assert.Equal((RateBracket.Interior, "", true), (interior.Bracket, interior.Mark, interior.Bracketed));
        Assert.Equal(Grid4, interior.Grid.Select(g => g.Rate));
        Assert.Equal(-3.0, interior.Grid[2].MeanDev!.Value, 12);
        Assert.Equal(RateBracket.TopEdge, RateChoice.Of(Runs(Grid4, seeds, r => Bowl(1, r)), 3e-2, []).Bracket);
        Assert.Equal(" (lr: bottom edge)", RateChoice.Of(Runs(Grid4, seeds, r => Bowl(1e-5, r)), 1e-3, []).Mark);
        Assert.Equal(RateBracket.OneRate, RateChoice.Of(Runs([2e-3], seeds, r => 3), 2e-3, []).Bracket);

        // 3e-2 ran on seed 0 only: the rates are compared on seed 0, where it lost.
        var partial = Runs(Grid4[..3], seeds, r => Bowl(1e-2, r)).Concat(Runs([3e-2], [0], r => 3.5)).ToList();
        Assert.Equal((RateBracket.Interior, 1), (RateChoice.Of(partial, 1e-2, []).Bracket, RateChoice.Of(partial, 1e-2, []).Grid[2].Compared));
        // A planned rate that has not run at all is still part of the grid.
        var planned = RateChoice.Of(Runs(Grid4[..3], seeds, r => Bowl(1e-2, r)), 1e-2, [3e-2, 1e-2]);
        Assert.Equal((RateBracket.NeighbourMissing, 4, 0), (planned.Bracket, planned.Grid.Count, planned.Grid[3].Seeds));
    }

    [Fact]
    public void Rates_are_compared_on_the_seeds_every_rate_ran_so_the_choices_later_seeds_cannot_move_it()
    {
        // 1e-2 won the search on seeds 0 and 1, then ran seeds 2-4 alone and scored worse there (harder draws).
        var runs = Runs([3e-3, 1e-2, 3e-2], [0, 1], r => Bowl(1e-2, r)).Concat(Runs([1e-2], [2, 3, 4], r => 4.0)).ToList();
        // Over all of its seeds 1e-2's mean dev would be -3.6, behind 3e-2's -3.23.
        Assert.Equal(1e-2, LearningRates.Choose(runs));
        var choice = RateChoice.Of(runs, 1e-2, []);
        Assert.Equal((RateBracket.Interior, 5, 2), (choice.Bracket, choice.Grid[1].Seeds, choice.Grid[1].Compared));
        Assert.Equal(-3.0, choice.Grid[1].MeanDev!.Value, 12);
        Assert.Equal(1e-2, ResultTable.Summarize(runs).Single().BestLearningRate);
        Assert.Equal(5, ResultTable.Summarize(runs).Single().Seeds);
        Assert.Contains("0.01*: 3.0000 (5 seeds, compared on 2)", LearningRates.Table(ResultTable.Summarize(runs)).Markdown());
        // No seed in common: each rate's mean over all of its seeds, and the neighbours have not run the choice's seed.
        List<JobResult> apart = [.. Runs([1e-3], [0], r => 3.6), .. Runs([1e-2], [1], r => 3.2), .. Runs([3e-2], [2], r => 3.5)];
        Assert.Equal(1e-2, LearningRates.Choose(apart));
        Assert.Equal(RateBracket.NeighbourMissing, RateChoice.Of(apart, 1e-2, []).Bracket);
        // A tie goes to the lower rate in whatever order the runs come.
        List<JobResult> tie = [.. Runs([3e-2, 1e-2], [0, 1], r => 3.0)];
        Assert.Equal(1e-2, LearningRates.Choose(tie));
        Assert.Equal(1e-2, LearningRates.Choose([.. tie.AsEnumerable().Reverse()]));
    }

    [Fact]
    public void A_rate_search_plans_the_other_seeds_at_the_chosen_rate_once_every_search_cell_has_a_result()
    {
        var full = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }],
            Methods = [new MethodSpec { Name = "pretrained", Kind = MethodKind.ZeroShot }, new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora }],
            LearningRates = Grid4, Seeds = [0, 1, 2, 3], NumTrain = 200,
        }.Validate("test");
        var config = (full with { RateSearchSeeds = [0, 1] }).Validate("test");
        var dir = Directory.CreateTempSubdirectory("rate-search").FullName;
        try
        {
            var search = Grid.Expand(config, dir);
            Grid.WriteSpecs(search);
            // Every rate on seeds 0 and 1; the zero-shot row has no rate to search and runs every seed.
            Assert.Equal(8, search.Count(j => j.Method == "LoRA"));
            Assert.All(search.Where(j => j.Method == "LoRA"), j => Assert.Contains(j.Seed, new long[] { 0, 1 }));
            Assert.Equal(4, search.Count(j => j.Method == "pretrained"));
            Assert.Equal(["lm LoRA"], Grid.AwaitingRateSearch(config, search));
            void Finish(JobSpec j)
            {
                var nll = Bowl(3e-3, j.LearningRate);
                File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new { dev = new { nll_per_token = nll }, test = new { nll_per_token = nll }, training_flops = 1e12 }));
            }
            var lora = search.Where(j => j.Method == "LoRA").ToList();
            lora.SkipLast(1).ToList().ForEach(Finish);
            Assert.Equal(search.Select(j => j.Id), Grid.Expand(config, dir).Select(j => j.Id));   // one search cell still to run
            Finish(lora[^1]);

            var all = Grid.Expand(config, dir);
            var rest = all.Where(j => j.Method == "LoRA" && j.Seed >= 2).ToList();
            Assert.Equal([(3e-3, 2L), (3e-3, 3L)], rest.Select(j => (j.LearningRate, j.Seed)));
            // The same cells (ids and folders) as the full grid's at that rate.
            var fullIds = Grid.Expand(full, dir).Select(j => j.Id).ToHashSet();
            Assert.All(all, j => Assert.Contains(j.Id, fullIds));
            Assert.Empty(Grid.AwaitingRateSearch(config, all));

            // Every rate diverged on a search seed: nothing to choose, nothing more planned, and the wait says why.
            foreach (var j in lora.Where(j => j.Seed == 1))
                File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new { status = "diverged", test = new { }, training_flops = 1e12 }));
            var diverged = Grid.Expand(config, dir);
            Assert.Equal(search.Select(j => j.Id), diverged.Select(j => j.Id));
            Assert.Equal(["lm LoRA (every rate diverged on a search seed: the grid needs lower rates)"], Grid.AwaitingRateSearch(config, diverged));

            // A row of one rate has nothing to search: every seed is planned at once.
            var one = (config with { Methods = [new MethodSpec { Name = "LoRA 1e-3", Kind = MethodKind.Lora, LearningRates = [1e-3] }] }).Validate("test");
            Assert.Equal([0L, 1, 2, 3], Grid.Expand(one, dir).Select(j => j.Seed));
            Assert.Empty(Grid.AwaitingRateSearch(one, Grid.Expand(one, dir)));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData("[]", "field 'rate_search_seeds' needs at least one seed (or leave it out: every seed runs every rate)")]
    [InlineData("[0, 0]", "field 'rate_search_seeds' lists seed 0 twice")]
    [InlineData("[0, 7]", "field 'rate_search_seeds': seed 7 is not one of 'seeds'")]
    public void A_bad_rate_search_is_refused_naming_the_field(string seeds, string message)
    {
        var config = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }],
            Methods = [new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora }], Seeds = [0, 1, 2],
            RateSearchSeeds = JsonSerializer.Deserialize<long[]>(seeds),
        };
        Assert.Equal($"test: {message}", Assert.Throws<InvalidDataException>(() => config.Validate("test")).Message);
    }

    [Theory]
    [InlineData(RateBracket.Interior, RateBracket.Interior, "10")]
    [InlineData(RateBracket.TopEdge, RateBracket.Interior, ">= 10")]
    [InlineData(RateBracket.Interior, RateBracket.BottomEdge, ">= 10")]
    [InlineData(RateBracket.BottomEdge, RateBracket.Interior, "<= 10")]
    [InlineData(RateBracket.Interior, RateBracket.TopEdge, "<= 10")]
    [InlineData(RateBracket.TopEdge, RateBracket.TopEdge, "10 (not bracketed)")]
    [InlineData(RateBracket.OneRate, RateBracket.Interior, "10 (not bracketed)")]
    public void The_lora_to_full_ratio_is_a_bound_when_a_side_sits_at_an_edge(RateBracket lora, RateBracket full, string expected) =>
        Assert.Equal(expected, LearningRates.RatioText(10, lora, full));

    [Fact]
    public void Report_marks_unbracketed_rows_lists_each_grid_and_measures_the_lora_to_full_ratio()
    {
        var config = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }],
            Methods =
            [
                new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora },
                new MethodSpec { Name = "COLA M=3", Kind = MethodKind.Cola, ChainLength = 3 },
                new MethodSpec { Name = "LoRA r32 a64", Kind = MethodKind.Lora, Ranks = [32], Alpha = 64 },
                new MethodSpec { Name = "full fine-tuning", Kind = MethodKind.Full, LearningRates = [1e-4, 3e-4, 1e-3, 3e-3] },
            ],
            LearningRates = Grid4, Seeds = [0, 1], NumTrain = 200,
        }.Validate("test");
        var dir = Directory.CreateTempSubdirectory("lr-report").FullName;
        try
        {
            var jobs = Grid.Expand(config, dir);
            Grid.WriteSpecs(jobs);
            foreach (var j in jobs)
            {
                // LoRA is best at 1e-2 (interior), COLA at the top rate, full fine-tuning at 1e-3 (interior);
                // LoRA r32's 3e-2 has not run, so its choice of 1e-2 is not bracketed.
                if (j.Method == "LoRA r32 a64" && j.LearningRate == 3e-2) continue;
                var best = j.Method switch { "COLA M=3" => 1.0, "full fine-tuning" => 1e-3, _ => 1e-2 };
                var nll = Bowl(best, j.LearningRate) + 0.01 * j.Seed;
                // Full fine-tuning at 3e-3 diverges on seed 1: the table says so instead of a mean of -infinity.
                if (j.Method == "full fine-tuning" && j.LearningRate == 3e-3 && j.Seed == 1)
                {
                    File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new { status = "diverged", test = new { }, training_flops = 1e12 }));
                    continue;
                }
                File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new { dev = new { nll_per_token = nll }, test = new { nll_per_token = nll }, training_flops = 1e12 }));
            }
            var cells = ResultTable.Summarize(ResultTable.Load(dir), ResultTable.Planned(dir));
            Assert.Equal(RateBracket.Interior, cells.Single(c => c.Method == "LoRA").Rates!.Bracket);
            var table1 = Reports.Table1(cells).Markdown();
            Assert.Contains("| LoRA | 3.005 ± 0.007 |", table1);
            Assert.Contains("| COLA M=3 | 5.324 ± 0.007 (lr: top edge) |", table1);
            Assert.Contains("| LoRA r32 a64 | 3.005 ± 0.007 (lr: neighbour missing) |", table1);

            var rates = LearningRates.Table(cells).Markdown();
            Assert.Contains("| lm | LoRA | adamw | alpha = 2r (16) | 0.001: 4.0050 (2 seeds), 0.003: 3.2784 (2 seeds), 0.01*: 3.0050 (2 seeds), " +
                "0.03: 3.2326 (2 seeds) | 0.01 | yes |", rates);
            Assert.Contains("| lm | LoRA r32 a64 | adamw | alpha = 2r (64) | 0.001: 4.0050 (2 seeds), 0.003: 3.2784 (2 seeds), 0.01*: 3.0050 (2 seeds), " +
                "0.03: not run | 0.01 | no: neighbour missing |", rates);
            Assert.Contains("| lm | full fine-tuning | adamw | - |", rates);
            Assert.Contains("0.001*: 3.0050 (2 seeds), 0.003: diverged on 1 of 2 seeds | 0.001 | yes |", rates);
            var ratio = LearningRates.Ratio(cells)!.Markdown();
            Assert.Contains("| lm | LoRA | alpha = 2r (16) | 0.01 | full fine-tuning | 0.001 | 10 |", ratio);
            Assert.Contains("| lm | LoRA r32 a64 | alpha = 2r (64) | 0.01 (lr: neighbour missing) | full fine-tuning | 0.001 | 10 (not bracketed) |", ratio);
            Assert.Equal(["lm COLA M=3: learning rate 0.03 is not bracketed (top edge; grid 0.001, 0.003, 0.01, 0.03)",
                "lm LoRA r32 a64: learning rate 0.01 is not bracketed (neighbour missing; grid 0.001, 0.003, 0.01, 0.03 not run)"],
                LearningRates.Warnings(cells).Order(StringComparer.Ordinal));
            var files = Reports.Write(cells, Path.Combine(dir, "report"));
            Assert.Contains(files, f => f.EndsWith("learning-rates.csv", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith("lr-ratio.csv", StringComparison.Ordinal));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Both_alpha_policies_get_their_own_rank_rows_and_share_closed_table()
    {
        var config = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }],
            Methods =
            [
                new MethodSpec { Name = "LoRA r8", Kind = MethodKind.Lora },
                new MethodSpec { Name = "LoRA r32 a64", Kind = MethodKind.Lora, Ranks = [32], Alpha = 64 },
                new MethodSpec { Name = "LoRA r32 a16", Kind = MethodKind.Lora, Ranks = [32] },
                new MethodSpec { Name = "COLA M=3", Kind = MethodKind.Cola, ChainLength = 3 },
                new MethodSpec { Name = "COLA M=3 r32 a64", Kind = MethodKind.Cola, ChainLength = 3, Ranks = [32], Alpha = 64 },
                new MethodSpec { Name = "COLA M=3 r32 a16", Kind = MethodKind.Cola, ChainLength = 3, Ranks = [32] },
            ],
            LearningRates = [1e-3], Seeds = [0, 1, 2], NumTrain = 200,
        }.Validate("test");
        var dir = Directory.CreateTempSubdirectory("alpha-policies").FullName;
        try
        {
            var jobs = Grid.Expand(config, dir);
            Grid.WriteSpecs(jobs);
            foreach (var j in jobs)
            {
                var nll = j.Method switch
                {
                    "LoRA r8" => 3.5,
                    "LoRA r32 a64" => 3.3,
                    "LoRA r32 a16" => 3.4,
                    "COLA M=3" => 3.45,
                    "COLA M=3 r32 a64" => 3.28,
                    _ => 3.39,
                } + 0.01 * j.Seed;
                File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new { dev = new { nll_per_token = nll }, test = new { nll_per_token = nll }, training_flops = 1e12 }));
            }
            var study = Study.Of(ResultTable.Summarize(ResultTable.Load(dir))).Single();
            var shares = Reports.ShareClosedTables(study);
            Assert.Equal(["Share of the gap from LoRA r8 to LoRA r32 a16 (alpha 16 fixed (scale 0.5)) closed at rank-8 memory",
                "Share of the gap from LoRA r8 to LoRA r32 a64 (alpha = 2r (64)) closed at rank-8 memory"], shares.Select(t => t.Title));
            Assert.Contains(",\"0.50 ± 0.00 [0.50, 0.50]\",", shares[0].Csv());
            Assert.Contains(",\"0.25 ± 0.00 [0.25, 0.25]\",", shares[1].Csv());
            var table8 = Reports.Table8(study)!.Markdown();
            Assert.Contains("| lm | LoRA (alpha = 2r) | 3.510 ± 0.010 (lr: one rate) | 3.310 ± 0.010 (lr: one rate) |", table8);
            Assert.Contains("| lm | LoRA (alpha 16 fixed) | 3.510 ± 0.010 (lr: one rate) | 3.410 ± 0.010 (lr: one rate) |", table8);
            Assert.Contains("| lm | COLA M=3 (alpha = 2r) | 3.460 ± 0.010 (lr: one rate) | 3.290 ± 0.010 (lr: one rate) |", table8);
            Assert.Contains("| lm | COLA M=3 - LoRA (alpha 16 fixed), paired (mean [95% t interval]) | -0.0500 [-0.0500, -0.0500] chain better | " +
                "-0.0100 [-0.0100, -0.0100] chain better |", table8);
            Assert.DoesNotContain("alpha 64 fixed", table8);   // one rank only: not a policy of its own
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Learning_and_forgetting_are_paired_with_the_pretrained_row_and_effective_ranks_read_per_link()
    {
        var config = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }], SourceData = "stories.txt", SourceWindows = 50,
            Methods =
            [
                new MethodSpec { Name = "zero-shot", Kind = MethodKind.ZeroShot },
                new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora },
                new MethodSpec { Name = "COLA M=2", Kind = MethodKind.Cola, ChainLength = 2 },
            ],
            LearningRates = [1e-3], Seeds = [0, 1, 2], NumTrain = 200,
        }.Validate("test");
        var dir = Directory.CreateTempSubdirectory("learn-forget").FullName;
        try
        {
            var jobs = Grid.Expand(config, dir);
            Assert.All(jobs, j => Assert.Equal(("/data/stories.txt", 50), (j.Options.Source, j.Options.SourceWindows)));
            Assert.Equal(("/data/stories.txt", 50), (JobRunner.TrainOptions(jobs[^1]).Source, JobRunner.TrainOptions(jobs[^1]).SourceWindows));
            Assert.Equal("/data/stories.txt", JobRunner.EvalOptions(jobs[0]).Source);
            Grid.WriteSpecs(jobs);
            foreach (var j in jobs)
            {
                // Pretrained: test 4.0, source 1.9. LoRA gains 0.5 and loses 0.10, 0.11, 0.12; COLA gains 0.55 and loses 0.2 (+0.01 s).
                var (test, source) = j.Method switch { "zero-shot" => (4.0, 1.9), "LoRA" => (3.5, 2.0 + 0.01 * j.Seed), _ => (3.45, 2.1 + 0.01 * j.Seed) };
                double[] ranks = j.Method == "COLA M=2" ? [3.0 + j.Seed, 6.0 + j.Seed] : [4.0];
                File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new
                {
                    dev = new { nll_per_token = test }, test = new { nll_per_token = test }, source = new { nll_per_token = source }, training_flops = 1e12,
                    training = new { links = ranks.Select(r => new { delta_effective_rank = r }) },
                }));
            }
            var cells = ResultTable.Summarize(ResultTable.Load(dir));
            var table = LearnForget.Table(cells)!.Markdown();
            Assert.Contains("| lm | LoRA | 3.500 ± 0.000 (lr: one rate) | 2.0100 | +0.5000 [+0.5000, +0.5000] | +0.1100 [+0.0852, +0.1348] | 3 |", table);
            Assert.Contains("| lm | COLA M=2 | 3.450 ± 0.000 (lr: one rate) | 2.1100 | +0.5500 [+0.5500, +0.5500] | +0.2100 [+0.1852, +0.2348] | 3 |", table);
            var ranksTable = LearnForget.EffectiveRanks(cells)!.Markdown();
            Assert.Contains("| lm | COLA M=2 | alpha = 2r (16) | 4.00, 7.00 | 3 |", ranksTable);
            Assert.Contains("| lm | LoRA | alpha = 2r (16) | 4.00 | 3 |", ranksTable);
            var files = Reports.Write(cells, Path.Combine(dir, "report"));
            Assert.Contains(files, f => f.EndsWith("learn-forget.csv", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith("learn-forget.png", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith("effective-rank.png", StringComparison.Ordinal));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
