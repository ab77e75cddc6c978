using System.Text.Json;
using ChainLora.Experiments;
using ChainLora.IO;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Tests.Experiments;

public class GridAndReportTests
{
    static ExperimentConfig Config => new ExperimentConfig
    {
        Model = "/models/m", DataRoot = "/data",
        Tasks = [new TaskSpec { Name = "sst2", Data = "sst2" }, new TaskSpec { Name = "cb", Data = "superglue/CB" }],
        Methods =
        [
            new MethodSpec { Name = "zero-shot", Kind = MethodKind.ZeroShot },
            new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora },
            new MethodSpec { Name = "COLA M=2", Kind = MethodKind.Cola, ChainLength = 2 },
            new MethodSpec { Name = "COLA (8,4)", Kind = MethodKind.Cola, ChainLength = 2, Ranks = [8, 4] },
        ],
        LearningRates = [1e-3, 3e-3], Seeds = [0, 1, 2],
    }.Validate("test");

    [Theory]
    [InlineData("""{"accuracy": 0.75, "f1": 0.5}""", "accuracy", 0.75)]
    [InlineData("""{"f1": 0.5, "exact_match": 0.25}""", "f1", 0.5)]
    [InlineData("""{"nll_per_token": 2.5, "perplexity": 12.18}""", "-nll", -2.5)]
    [InlineData("""{"response_nll": 1.25, "perplexity": 3.49}""", "-nll", -1.25)]
    public void The_headline_metric_is_oriented_higher_is_better_for_every_task_kind(string metrics, string name, double value)
    {
        Assert.Equal((name, value), ResultTable.Primary(System.Text.Json.Nodes.JsonNode.Parse(metrics), "result.json"));
        var e = Assert.Throws<InvalidDataException>(() => ResultTable.Primary(System.Text.Json.Nodes.JsonNode.Parse("""{"bleu": 1}"""), "r.json"));
        Assert.Equal("r.json: no accuracy, f1, nll_per_token or response_nll in its metrics", e.Message);
    }

    [Fact]
    public void The_grid_crosses_tasks_methods_rates_and_seeds_with_stable_ids()
    {
        var jobs = Grid.Expand(Config, "/out");
        // Per task: zero-shot 3 seeds (no learning rate) + 3 trained methods x 2 rates x 3 seeds.
        Assert.Equal(2 * (3 + 3 * 2 * 3), jobs.Count);
        Assert.Equal(jobs.Count, jobs.Select(j => j.Id).Distinct().Count());
        Assert.Equal(jobs.Select(j => j.Id), Grid.Expand(Config, "/elsewhere").Select(j => j.Id));
        // Ids written by earlier versions (before typed kinds, variants and knots) still name the same cells,
        // so a grid re-run skips what they finished.
        Assert.Contains("cb-cola--8-4--lr0.001-s0-70327e9e79", jobs.Select(j => j.Id));
        Assert.Contains("sst2-zero-shot-lr0-s1-65594912e2", jobs.Select(j => j.Id));
        var stepDown = jobs.First(j => j.Method == "COLA (8,4)");
        var train = JobRunner.TrainOptions(stepDown);
        Assert.Equal((TrainingMethod.Cola, 2), (train.Trainer.Method, train.Chain.Length));
        Assert.Equal([8, 4], train.Chain.Ranks!);
        Assert.Equal(stepDown.Out, train.OutDir);
        Assert.Equal("/data/superglue/CB", jobs.First(j => j.Task == "cb").Options.Data);
        var zeroShot = JobRunner.EvalOptions(jobs.First(j => j.Kind == MethodKind.ZeroShot));
        Assert.Equal(0, zeroShot.Demonstrations);
        Assert.Null(train.Context);
    }

    [Fact]
    public void A_context_reaches_every_cell_and_makes_new_ids()
    {
        var lm = Config with { Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }], Context = 128 };
        var jobs = Grid.Expand(lm, "/out");
        Assert.All(jobs, j => Assert.Equal(128, j.Options.Context));
        Assert.All(jobs.Where(j => j.Kind.Trains()), j => Assert.Equal(128, JobRunner.TrainOptions(j).Context));
        Assert.All(jobs.Where(j => !j.Kind.Trains()), j => Assert.Equal(128, JobRunner.EvalOptions(j).Context));
        var without = Grid.Expand(lm with { Context = null }, "/out");
        Assert.Empty(jobs.Select(j => j.Id).Intersect(without.Select(j => j.Id)));
        var dir = Directory.CreateTempSubdirectory("grid-context").FullName;
        try
        {
            var written = Grid.WriteSpecs(Grid.Expand(lm, dir).Take(1)).Single();
            Assert.Contains("\"context\": 128", File.ReadAllText(written));
            Assert.Equal(128, JobSpec.Load(written).Options.Context);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void A_contiguous_split_reaches_every_lm_cell_with_new_ids_and_the_first_studys_cells_keep_theirs()
    {
        var lm = Config with { Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }], Context = 128, Split = TextSplit.Contiguous };
        var jobs = Grid.Expand(lm, "/out");
        Assert.All(jobs.Where(j => j.Kind.Trains()), j => Assert.Equal(TextSplit.Contiguous, JobRunner.TrainOptions(j).Split));
        Assert.All(jobs.Where(j => !j.Kind.Trains()), j => Assert.Equal(TextSplit.Contiguous, JobRunner.EvalOptions(j).Split));
        Assert.Empty(jobs.Select(j => j.Id).Intersect(Grid.Expand(lm with { Split = TextSplit.Shuffled }, "/out").Select(j => j.Id)));
        Assert.Contains("\"split\": \"contiguous\"", ExperimentConfig.Serialize(jobs[0]));
        Assert.DoesNotContain("split", ExperimentConfig.Serialize(jobs[0] with { Options = jobs[0].Options with { Split = TextSplit.Shuffled } }));
        var e = Assert.Throws<InvalidDataException>(() => (Config with { Split = TextSplit.Contiguous }).Validate("grid.json"));
        Assert.Equal("grid.json: field 'split' contiguous applies to the lm task only", e.Message);

        // A method's alpha and rsLoRA reach its cells (and the LoRA they train).
        var policy = Grid.Expand(lm with
        {
            Methods = [new MethodSpec { Name = "LoRA r32 a64", Kind = MethodKind.Lora, Ranks = [32], Alpha = 64 },
                new MethodSpec { Name = "LoRA r32 rs", Kind = MethodKind.Lora, Ranks = [32], Rslora = true }],
        }, "/out");
        Assert.Equal((64.0, false), (JobRunner.TrainOptions(policy[0]).Lora.Alpha, JobRunner.TrainOptions(policy[0]).Lora.UseRsLora));
        Assert.Equal((16.0, true), (JobRunner.TrainOptions(policy[^1]).Lora.Alpha, JobRunner.TrainOptions(policy[^1]).Lora.UseRsLora));
        Assert.Contains("\"rslora\": true", ExperimentConfig.Serialize(policy[^1]));

        // Every committed cell of the first lm study still has the id its folder is named by.
        var cells = Directory.GetDirectories(Path.Combine(RepoFiles.Require("runs/lm"), "jobs"));
        Assert.True(cells.Length >= 200, $"{cells.Length} cells");
        Assert.All(cells, dir => Assert.Equal(Path.GetFileName(dir), JobSpec.Load(Path.Combine(dir, "spec.json")).Id));
    }

    [Theory]
    [InlineData("""{ "model": "m", "tasks": [], "methods": [{"name": "a", "kind": "lora"}] }""", "tasks")]
    [InlineData("""{ "model": "m", "tasks": [{"name": "sst2", "data": "d"}], "methods": [{"name": "a", "kind": "prefix"}] }""", "prefix")]
    [InlineData("""{ "model": "m", "tasks": [{"name": "sst2", "data": "d"}], "methods": [{"name": "a", "kind": "lora", "chain_length": 2}] }""", "chain_length")]
    [InlineData("""{ "model": "m", "tasks": [{"name": "sst2", "data": "d"}], "methods": [{"name": "a", "kind": "lora"}], "lr": 1 }""", "lr")]
    [InlineData("""{ "model": "m", "tasks": [{"name": "sst2", "data": "d"}], "methods": [{"name": "a", "kind": "lora"}], "context": 64 }""", "'context' applies to the lm task only")]
    [InlineData("""{ "model": "m", "tasks": [{"name": "lm", "data": "d"}], "methods": [{"name": "a", "kind": "lora"}], "context": 1 }""", "'context' 1 must be at least 2")]
    public void Bad_configs_name_the_field(string json, string field)
    {
        var path = Path.Combine(Path.GetTempPath(), $"exp-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => ExperimentConfig.Load(path));
            Assert.Contains(field, e.Message);
            Assert.Contains(path, e.Message);
        }
        finally { File.Delete(path); }
    }

    /// <summary>Writes result.json files as `train`/`eval` would, with chosen dev and test accuracies.</summary>
    internal static string FakeRun(Func<JobSpec, (double Dev, double Test)> score, ExperimentConfig? config = null)
    {
        var dir = Directory.CreateTempSubdirectory("grid").FullName;
        var jobs = Grid.Expand(config ?? Config, dir);
        Grid.WriteSpecs(jobs);
        foreach (var j in jobs)
        {
            var (dev, test) = score(j);
            var log = Path.Combine(j.Out, "train_log.jsonl");
            if (j.Kind != MethodKind.ZeroShot)
                File.WriteAllLines(log, Enumerable.Range(1, 6).Select(s => s == 3 && j.Kind == MethodKind.Cola
                    ? """{"event":"knot","step":3,"link":2,"rank":8}"""
                    : $$"""{"step":{{s}},"link":1,"loss":{{1.0 / s}},"lr":0.001,"tokens_per_s":100}"""));
            File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new
            {
                task = j.Task, method = EnumNames.Name(j.Kind), dev = new { accuracy = dev }, test = new { accuracy = test },
                training_flops = j.Options.Chain.Ranks is [_, 4] ? 0.9e12 : 1e12,
            }));
        }
        return dir;
    }

    [Fact]
    public void Table_1_compares_each_chain_with_the_lora_of_its_own_rank_and_budget()
    {
        // "LoRA r32" sorts before "LoRA", and "LoRA n=50" trains on less: neither is COLA M=2's reference.
        var config = Config with
        {
            Tasks = [Config.Tasks[0]],
            Methods =
            [
                new MethodSpec { Name = "LoRA r32", Kind = MethodKind.Lora, Ranks = [32] },
                new MethodSpec { Name = "LoRA n=50", Kind = MethodKind.Lora, NumTrain = 50 },
                new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora },
                new MethodSpec { Name = "COLA M=2", Kind = MethodKind.Cola, ChainLength = 2 },
                new MethodSpec { Name = "COLA M=2 n=50", Kind = MethodKind.Cola, ChainLength = 2, NumTrain = 50 },
            ],
        };
        var dir = FakeRun(j => (0.5, j.Method switch { "LoRA r32" => 0.9, "LoRA n=50" => 0.4, "LoRA" => 0.5, "COLA M=2" => 0.6, _ => 0.5 }), config);
        try
        {
            var table1 = Reports.Table1(ResultTable.Summarize(ResultTable.Load(dir))).Markdown();
            Assert.Contains("| relative gain of COLA M=2 over LoRA | +20.00% |", table1);
            Assert.Contains("| relative gain of COLA M=2 n=50 over LoRA n=50 | +25.00% |", table1);
            Assert.DoesNotContain("over LoRA r32", table1);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Report_picks_the_learning_rate_on_dev_then_averages_test_over_seeds()
    {
        // At lr 3e-3 dev is best but test is worse: the protocol must still pick 3e-3.
        var dir = FakeRun(j => (j.LearningRate == 3e-3 ? 0.8 : 0.6, (j.LearningRate == 3e-3 ? 0.70 : 0.90) + 0.01 * j.Seed + (j.Kind == MethodKind.Cola ? 0.05 : 0)));
        try
        {
            var cells = ResultTable.Summarize(ResultTable.Load(dir));
            var lora = cells.Single(c => c.Task == "sst2" && c.Method == "LoRA");
            Assert.Equal(3e-3, lora.BestLearningRate);
            Assert.Equal(0.71, lora.Mean, 9);
            Assert.Equal(0.01, lora.Std, 9); // sample std of 0.70, 0.71, 0.72
            Assert.Equal(3, lora.Seeds);

            var table1 = Reports.Table1(cells).Markdown();
            Assert.Contains("| LoRA | 71.0 ± 1.0 (lr: top edge) | 71.0 ± 1.0 (lr: top edge) |", table1);
            Assert.Contains("relative gain of COLA M=2 over LoRA | +7.04% |", table1);
            var study = Study.Of(cells).Single();
            var table4 = Reports.Table4(study).Csv();
            Assert.True(table4.Contains("sst2,\"COLA (8,4)\",\"8,4\",76.0 ± 1.0 (lr: top edge),0.90,+10.0%"), table4);
            Assert.Contains("chain length 2", Reports.Table3(study).Markdown());

            var files = Reports.Write(cells, Path.Combine(dir, "report"));
            Assert.Contains(files, f => f.EndsWith("loss-sst2.png"));
            Assert.Contains(files, f => f.EndsWith("chain-length.png"));
            Assert.All(files.Where(f => f.EndsWith(".png")), f => Assert.True(new FileInfo(f).Length > 1000));
            Assert.Contains("![chain-length](chain-length.png)", File.ReadAllText(files[0]));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Unfinished_jobs_are_left_out_and_an_empty_grid_is_an_error()
    {
        var dir = FakeRun(_ => (0.5, 0.5));
        try
        {
            var all = ResultTable.Load(dir).Count;
            var one = Directory.GetDirectories(Path.Combine(dir, "jobs"))[0];
            File.Delete(Path.Combine(one, "result.json"));
            Assert.Equal(all - 1, ResultTable.Load(dir).Count);
            Assert.Throws<DirectoryNotFoundException>(() => ResultTable.Load(Path.Combine(dir, "nothing")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Studies_of_equal_epochs_are_told_apart_by_their_train_set_and_low_data_rows_join_the_next_larger()
    {
        var config = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }],
            Methods =
            [
                new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora },
                new MethodSpec { Name = "COLA M=2", Kind = MethodKind.Cola, ChainLength = 2 },
                new MethodSpec { Name = "COLA M=3", Kind = MethodKind.Cola, ChainLength = 3 },
                new MethodSpec { Name = "LoRA n=50", Kind = MethodKind.Lora, NumTrain = 50 },
                new MethodSpec { Name = "COLA M=3 n=50", Kind = MethodKind.Cola, ChainLength = 3, NumTrain = 50 },
                new MethodSpec { Name = "LoRA long", Kind = MethodKind.Lora, NumTrain = 1600 },
                new MethodSpec { Name = "LoRA r32 long", Kind = MethodKind.Lora, NumTrain = 1600, Ranks = [32] },
                new MethodSpec { Name = "COLA long", Kind = MethodKind.Cola, NumTrain = 1600 },
            ],
            LearningRates = [1e-3], Seeds = [0], NumTrain = 200, Epochs = 8,
        }.Validate("test");
        var dir = FakeRun(j => (0.5, 0.5), config);
        try
        {
            var studies = Study.Of(ResultTable.Summarize(ResultTable.Load(dir))).OrderBy(s => s.NumTrain).ToList();
            Assert.Equal([200, 1600], studies.Select(s => s.NumTrain));
            Assert.Equal(["COLA M=2", "COLA M=3", "COLA M=3 n=50", "LoRA", "LoRA n=50"], studies[0].Cells.Select(c => c.Method).Order(StringComparer.Ordinal));
            Assert.Equal(["-8ep-n200", "-8ep-n1600"], studies.Select(s => s.FileSuffix));
            Assert.Contains("(8 epochs, 1600 train)", Reports.ShareClosed(studies[1])!.Title);
            Assert.Contains("n = 50", Reports.Table6(studies[0])!.Markdown());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Lm_ablations_are_tabled_per_budget_with_the_share_of_the_gap_closed()
    {
        var config = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }],
            Methods =
            [
                new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora },
                new MethodSpec { Name = "LoRA r32", Kind = MethodKind.Lora, Ranks = [32] },
                new MethodSpec { Name = "COLA M=3", Kind = MethodKind.Cola, ChainLength = 3 },
                new MethodSpec { Name = "COLA M=3 rewarm", Kind = MethodKind.Cola, ChainLength = 3, Variant = ColaVariant.Rewarm },
                new MethodSpec { Name = "LoRA n=50", Kind = MethodKind.Lora, NumTrain = 50 },
                new MethodSpec { Name = "full fine-tuning", Kind = MethodKind.Full },
                new MethodSpec { Name = "LoRA SGD", Kind = MethodKind.Lora, Optimizer = OptimizerKind.Sgd },
            ],
            LearningRates = [1e-3], Seeds = [0, 1, 2], NumTrain = 200,
        }.Validate("test");
        var dir = Directory.CreateTempSubdirectory("lm-report").FullName;
        try
        {
            var jobs = Grid.Expand(config, dir);
            Grid.WriteSpecs(jobs);
            foreach (var j in jobs)
            {
                // NLL: LoRA r8 3.5, r32 3.3, rewarm 3.4 (half the gap), paper COLA 3.45, low data 3.6; + 0.01 per seed (mean +0.01).
                // Dev is 0.1 lower, except paper COLA's, 0.12 lower: it closes 0.35 of the gap on dev against 0.25 on test.
                var nll = j.Method switch { "LoRA" => 3.5, "LoRA r32" => 3.3, "COLA M=3 rewarm" => 3.4, "COLA M=3" => 3.45, _ => 3.6 } + 0.01 * j.Seed;
                File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new
                {
                    dev = new { nll_per_token = nll - (j.Method == "COLA M=3" ? 0.12 : 0.1) }, test = new { nll_per_token = nll }, training_flops = 1e12,
                }));
            }
            // A diverged run scores -infinity: its learning rate can never be the best.
            var divergedJob = jobs.First(j => j.Method == "COLA M=3" && j.Seed == 1);
            File.WriteAllText(divergedJob.ResultPath, """{"status": "diverged", "dev": null, "test": {}, "training_flops": 1e12}""");
            Assert.Equal(double.NegativeInfinity, ResultTable.Load(dir).Single(r => r.Spec.Id == divergedJob.Id).Test);
            File.WriteAllText(divergedJob.ResultPath, JsonSerializer.Serialize(new { dev = new { nll_per_token = 3.34 }, test = new { nll_per_token = 3.46 }, training_flops = 1e12 }));

            var cells = ResultTable.Summarize(ResultTable.Load(dir));
            var study = Study.Of(cells).Single();
            Assert.Equal((200, 8), (study.NumTrain, study.Rank));
            var share = Reports.ShareClosed(study)!.Csv();
            Assert.Contains("COLA M=3 rewarm (best on dev),8,rewarm,3.3100,\"0.50 ± 0.00 [0.50, 0.50]\",\"-0.1000 [-0.1000, -0.1000] chain better\"," +
                "3.410 ± 0.010 (lr: one rate),\"0.50 ± 0.00 [0.50, 0.50]\",\"-0.1000 [-0.1000, -0.1000] chain better\",3", share);
            Assert.Contains("COLA M=3,8,paper,3.3400,\"0.35 ± 0.00 [0.35, 0.35]\",\"-0.0700 [-0.0700, -0.0700] chain better\"," +
                "3.460 ± 0.010 (lr: one rate),\"0.25 ± 0.00 [0.25, 0.25]\",\"-0.0500 [-0.0500, -0.0500] chain better\",3", share);
            Assert.DoesNotContain("LoRA r32,", share);                    // rank-32 memory is the reference, not a candidate
            Assert.DoesNotContain("LoRA SGD", share);                     // another optimizer: Table 5's row, not a chain variant
            var table3 = Reports.Table3(study).Markdown();
            Assert.Contains("| lm | 3.510 ± 0.010 (lr: one rate) | 3.460 ± 0.010 (lr: one rate) |", table3); // the rewarm variant stays out of Table 3
            Assert.Contains("n = 50", Reports.Table6(study)!.Markdown());
            Assert.Contains("| lm | LoRA | 3.510 ± 0.010 (lr: one rate) | 3.310 ± 0.010 (lr: one rate) |", Reports.Table8(study)!.Markdown());
            var files = Reports.Write(cells, Path.Combine(dir, "report"));
            Assert.Contains(files, f => f.EndsWith("share-closed.csv", StringComparison.Ordinal));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Every_table_comparing_a_chain_with_lora_gives_the_paired_difference_and_its_95_percent_interval()
    {
        var config = new ExperimentConfig
        {
            Model = "/models/m", DataRoot = "/data", Tasks = [new TaskSpec { Name = "lm", Data = "text.txt" }],
            Methods =
            [
                new MethodSpec { Name = "LoRA", Kind = MethodKind.Lora },
                new MethodSpec { Name = "COLA M=2", Kind = MethodKind.Cola, ChainLength = 2 },
                new MethodSpec { Name = "COLA M=3", Kind = MethodKind.Cola, ChainLength = 3 },
                new MethodSpec { Name = "COLA (8,4)", Kind = MethodKind.Cola, ChainLength = 2, Ranks = [8, 4] },
                new MethodSpec { Name = "LoRA r32", Kind = MethodKind.Lora, Ranks = [32] },
                new MethodSpec { Name = "COLA M=3 r32", Kind = MethodKind.Cola, ChainLength = 3, Ranks = [32] },
                new MethodSpec { Name = "LoRA SGD", Kind = MethodKind.Lora, Optimizer = OptimizerKind.Sgd },
                new MethodSpec { Name = "COLA M=3 SGD", Kind = MethodKind.Cola, ChainLength = 3, Optimizer = OptimizerKind.Sgd },
            ],
            LearningRates = [1e-3], Seeds = [0, 1, 2, 3, 4], NumTrain = 200,
        }.Validate("test");
        // Per seed, chain NLL - LoRA NLL: "better" has its 95% t interval [-0.0147, -0.0053] (mean -0.01, sd 0.0038,
        // t(0.975, 4) = 2.7764), "unclear" [-0.0094, +0.0098] covers 0, "worse" is "better" negated.
        double[] better = [-0.010, -0.012, -0.008, -0.015, -0.005], unclear = [0.01, -0.01, 0.005, -0.004, 0.0];
        var dir = Directory.CreateTempSubdirectory("paired-report").FullName;
        try
        {
            var jobs = Grid.Expand(config, dir);
            Grid.WriteSpecs(jobs);
            foreach (var j in jobs)
            {
                var s = (int)j.Seed;
                var nll = j.Method switch
                {
                    "LoRA" => 3.5,
                    "COLA M=2" => 3.5 + better[s],
                    "COLA M=3" => 3.5 + unclear[s],
                    "COLA (8,4)" => 3.5 - better[s],
                    "LoRA r32" => 3.3,
                    "COLA M=3 r32" => 3.3 + better[s],
                    "LoRA SGD" => 3.6,
                    _ => 3.6 - better[s],
                } + 0.01 * s;
                File.WriteAllText(j.ResultPath, JsonSerializer.Serialize(new
                {
                    dev = new { nll_per_token = nll - 0.1 }, test = new { nll_per_token = nll }, training_flops = 1e12,
                }));
            }
            var cells = ResultTable.Summarize(ResultTable.Load(dir));
            var study = Study.Of(cells).Single();
            const string Better = "-0.0100 [-0.0147, -0.0053] chain better", Unclear = "+0.0002 [-0.0094, +0.0098] no difference found",
                Worse = "+0.0100 [+0.0053, +0.0147] LoRA better";
            Assert.Contains($"| lm: Δ NLL vs LoRA (paired over seeds, mean [95% t interval]) |  | {Better} | {Unclear} |", Reports.Table3(study).Markdown());
            var table4 = Reports.Table4(study).Markdown();
            Assert.Contains($"| lm | COLA (8,4) | 8,4 | 3.530 ± 0.015 (lr: one rate) | 1.00 | +0.0% | {Worse} |", table4);
            Assert.Contains($"| lm | COLA M=2 | 8 | 3.510 ± 0.017 (lr: one rate) | 1.00 | +0.0% | {Better} |", table4);
            Assert.Contains($"| sgd | COLA M=3 SGD - LoRA, paired (mean [95% t interval]) | {Worse} |", Reports.Table5(study).Markdown());
            Assert.Contains($"| lm | COLA M=3 - LoRA, paired (mean [95% t interval]) | {Unclear} | {Better} |", Reports.Table8(study)!.Markdown());
            Assert.Contains($"| COLA M=2 - LoRA, paired over seeds (mean [95% t interval]) | {Better} |", Reports.Table1(cells).Markdown());
            var paired = Reports.Paired(study)!.Markdown();
            Assert.Contains($"| lm | COLA M=2 | LoRA | s0: -0.0100, s1: -0.0120, s2: -0.0080, s3: -0.0150, s4: -0.0050 | {Better} | {Better} |", paired);
            Assert.Contains($"| lm | COLA M=3 SGD | LoRA SGD | ", paired);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
