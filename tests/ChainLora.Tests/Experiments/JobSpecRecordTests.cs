using ChainLora.Experiments;
using ChainLora.Lora;

namespace ChainLora.Tests.Experiments;

/// <summary>
/// A job spec is the options record: any setting of it travels through spec.json and back to the recipe without
/// a field copied for it, while the fields grid cells have always written keep their layout (and ids).
/// </summary>
public sealed class JobSpecRecordTests : TempFolderTest
{
    static JobSpec Cell(Func<ChainLora.Recipes.TrainRecipeOptions, ChainLora.Recipes.TrainRecipeOptions> change) => new()
    {
        Options = change(new() { Task = "lm", Data = "/d/text.txt", Model = "/m", Seed = 2, Sizes = new(16, 4, 4), BatchSize = 4, Trainer = new() { LearningRate = 3e-3, Epochs = 2 } }),
        Method = "LoRA", Kind = MethodKind.Lora, Out = "/o",
    };

    [Fact]
    public void A_setting_outside_the_first_layout_is_written_after_it_and_read_back_into_the_record()
    {
        var spec = Cell(o => o with { Trainer = o.Trainer with { WarmupRatio = 0.1 }, Lora = o.Lora with { Dropout = 0.05, Bias = LoraBias.All } });
        var text = ExperimentConfig.Serialize(spec);
        Assert.EndsWith("""
              "base_dtype": "fp32",
              "warmup_ratio": 0.1,
              "lora_dropout": 0.05,
              "lora_bias": "all",
              "out": "/o"
            }
            """, text);
        var read = JobSpec.Load(Write("spec.json", text));
        Assert.Equal((0.1, 0.05, LoraBias.All), (read.Options.Trainer.WarmupRatio, read.Options.Lora.Dropout, read.Options.Lora.Bias));
        Assert.Equal(spec.Id, read.Id);
        Assert.NotEqual(Cell(o => o).Id, spec.Id);
        // The recipe gets the record as it is, with the cell's folder and checkpoints added.
        var train = JobRunner.TrainOptions(read);
        Assert.Equal((0.1, "/o", JobRunner.CheckpointEvery), (train.Trainer.WarmupRatio, train.OutDir, train.CheckpointEvery));
        Assert.Equal(ChainLora.Training.TrainingMethod.Lora, train.Trainer.Method);
    }

    [Fact]
    public void Default_settings_leave_the_first_layout_as_it_was()
    {
        var text = ExperimentConfig.Serialize(Cell(o => o));
        Assert.Equal("""
            {
              "task": "lm",
              "data": "/d/text.txt",
              "model": "/m",
              "method": "LoRA",
              "kind": "lora",
              "chain_length": 1,
              "ranks": null,
              "rank": 8,
              "alpha": 16,
              "icl": 0,
              "optimizer": "adamw",
              "learning_rate": 0.003,
              "seed": 2,
              "epochs": 2,
              "num_train": 16,
              "num_dev": 4,
              "num_eval": 4,
              "batch_size": 4,
              "base_dtype": "fp32",
              "out": "/o"
            }
            """, text);
    }

    [Fact]
    public void An_unknown_or_mistyped_field_is_refused_naming_it()
    {
        var text = ExperimentConfig.Serialize(Cell(o => o));
        var unknown = Write("a/spec.json", text.Replace("\"out\"", "\"warmup\": 0.1,\n  \"out\""));
        Assert.Contains("field 'warmup' is not a job spec field", Assert.Throws<InvalidDataException>(() => JobSpec.Load(unknown)).Message);
        var mistyped = Write("b/spec.json", text.Replace("\"out\"", "\"warmup_ratio\": \"high\",\n  \"out\""));
        Assert.Contains("field 'warmup_ratio': \"high\" is not a number", Assert.Throws<InvalidDataException>(() => JobSpec.Load(mistyped)).Message);
        // A field the first layout names itself is read under that name only.
        var renamed = Write("c/spec.json", text.Replace("\"out\"", "\"use_rslora\": true,\n  \"out\""));
        Assert.Contains("field 'use_rslora' is not a job spec field", Assert.Throws<InvalidDataException>(() => JobSpec.Load(renamed)).Message);
    }
}

/// <summary>A grid config sets any other setting of the record by its recorded name, for every cell or for one row.</summary>
public sealed class GridOptionsTests : TempFolderTest
{
    string Config(string options, string rowOptions = "") => Write($"grid-{Guid.NewGuid():N}.json", $$"""
        {
          "model": "/m", "data_root": "/d", "tasks": [{ "name": "lm", "data": "text.txt" }],
          "methods": [
            { "name": "LoRA", "kind": "lora" },
            { "name": "LoRA dropout", "kind": "lora"{{rowOptions}} }
          ],
          "learning_rates": [1e-3]{{options}}
        }
        """);

    [Fact]
    public void Grid_and_row_options_reach_each_cell_and_its_id()
    {
        var plain = Grid.Expand(ExperimentConfig.Load(Config("")), "/out");
        var set = Grid.Expand(ExperimentConfig.Load(Config(""", "options": { "warmup_ratio": 0.1 }""", """, "options": { "lora_dropout": 0.05 }""")), "/out");
        Assert.Equal([0.1, 0.1], set.Select(j => j.Options.Trainer.WarmupRatio));
        Assert.Equal([0.0, 0.05], set.Select(j => j.Options.Lora.Dropout));
        Assert.All(plain.Zip(set), p => Assert.NotEqual(p.First.Id, p.Second.Id));
        Assert.Contains("\"lora_dropout\": 0.05", ExperimentConfig.Serialize(set[1]));
        Assert.Equal(0.05, JobSpec.Load(Write("spec.json", ExperimentConfig.Serialize(set[1]))).Options.Lora.Dropout);
    }

    [Theory]
    [InlineData(""", "options": { "warmup": 0.1 }""", "options: 'warmup' is not a setting")]
    [InlineData(""", "options": { "warmup_ratio": "high" }""", "options: 'warmup_ratio': \"high\" is not a number")]
    [InlineData(""", "options": { "lora_bias": "some" }""", "options: 'lora_bias': \"some\" is not one of \"none\", \"all\", \"lora_only\"")]
    [InlineData(""", "options": { "epochs": 3 }""", "options: 'epochs' is a field of the grid itself; set it there")]
    public void A_bad_option_is_refused_naming_it(string options, string message)
    {
        var path = Config(options);
        var e = Assert.Throws<InvalidDataException>(() => ExperimentConfig.Load(path));
        Assert.StartsWith($"{path}: {message}", e.Message);
    }
}
