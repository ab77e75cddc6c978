using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Recipes;
using ChainLora.Tasks;
using ChainLora.Training;

namespace ChainLora.Tests.Recipes;

/// <summary>
/// The checkpoint fingerprint is the options record written field by field: every setting that changes the
/// maths is in it, those the first hand-written fingerprint missed included, and checkpoints written in
/// that first form still resume when they agree.
/// </summary>
public sealed class RunFingerprintTests : TempFolderTest
{
    (TrainRecipeOptions Options, DataSummary Data) Run()
    {
        var file = Write("train.txt", "some text to train on\n");
        return (new TrainRecipeOptions { Task = "lm", Data = file, Chain = new ChainConfig { Length = 2 } },
            new DataSummary(file, [file], [], 8, 0, true, new(), 4, 0, 2, null));
    }

    static string? Difference(IReadOnlyDictionary<string, string> saved, IReadOnlyDictionary<string, string> now)
    {
        try
        {
            Checkpoint.CheckFingerprint("ckpt", saved, now);
            return null;
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }
    }

    [Fact]
    public void Every_setting_that_changes_the_maths_refuses_a_resume_naming_it()
    {
        var (options, data) = Run();
        var before = RunFingerprint.Of(options, "model", data);
        foreach (var (changed, key) in new (TrainRecipeOptions, string)[]
        {
            (options with { Trainer = options.Trainer with { WarmupRatio = 0.1 } }, "warmup_ratio"),
            (options with { Trainer = options.Trainer with { RewarmEachLink = true } }, "rewarm_each_link"),
            (options with { Lora = options.Lora with { Init = LoraInit.Gaussian } }, "lora_init"),
            (options with { Chain = options.Chain with { AlphaPolicy = AlphaPolicy.KeepScaling } }, "alpha_policy"),
            (options with { Chain = options.Chain with { KnotFractions = [0.25] } }, "knot_fractions"),
            (options with { Sizes = options.Sizes with { Dev = 7 } }, "num_dev"),
            (options with { Trainer = options.Trainer with { RecordDeltaSpectra = true } }, "delta_spectra"),
        })
        {
            var message = Difference(before, RunFingerprint.Of(changed, "model", data));
            Assert.NotNull(message);
            Assert.Contains($": {key} was ", message);
        }
        // Plumbing is not a setting: another output folder or checkpoint interval resumes.
        Assert.Null(Difference(before, RunFingerprint.Of(options with { OutDir = PathIn("elsewhere"), CheckpointEvery = 5 }, "model", data)));
    }

    [Fact]
    public void A_checkpoint_of_the_first_form_resumes_when_what_both_forms_name_alike_agrees()
    {
        var (options, data) = Run();
        var now = RunFingerprint.Of(options, "model", data);
        // The first form, as checkpoints before the options record wrote it.
        var first = new Dictionary<string, string>
        {
            ["model"] = now["model"], ["task"] = "lm", ["data"] = now["data"], ["sizes"] = "train 1000, dev 500, eval 1000", ["seed"] = "0",
            ["batch_size"] = "8", ["method"] = "lora", ["variant"] = "paper", ["chain"] = "length 2, ranks -, knots fixed",
            ["lora"] = "rank 8, alpha 16, dropout 0, targets , bias none", ["optimizer"] = "adamw, weight decay 0, momentum 0",
            ["learning_rate"] = "0.0001, warmup 0, rewarm False, epochs 5, accumulation 1, clip 0", ["adapter"] = "-",
        };
        Assert.Null(Difference(first, now));
        var message = Difference(new Dictionary<string, string>(first) { ["seed"] = "3" }, now);
        Assert.Equal("--resume ckpt: seed was 3 in the interrupted run and is 0 now; resume with the same options and data", message);
        // A fingerprint of the second form is compared key by key, those only one side holds included.
        var withoutOne = new Dictionary<string, string>(now);
        withoutOne.Remove("warmup_ratio");
        Assert.Contains("warmup_ratio was (none)", Difference(withoutOne, now));
    }
}
