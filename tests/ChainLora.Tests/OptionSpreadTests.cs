using System.Reflection;
using System.Text.RegularExpressions;
using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Recipes;
using ChainLora.Training;

namespace ChainLora.Tests;

/// <summary>
/// An option lives in its record, its CLI option, its use and at most one other reader: result.json, the
/// fingerprint and job specs write the record whole (OptionRecords), so nobody needs to copy a field. Checked
/// for every option with a name of its own (two words or more, so a word such as Rank or Seed does not count
/// every file that says it). The options below are read in more places for reasons of their own; their
/// ceilings are today's counts, so they may shrink and never grow.
/// </summary>
public sealed partial class OptionSpreadTests
{
    static readonly Dictionary<string, (int Files, string Why)> Wider = new()
    {
        ["LearningRate"] = (12, "the grid's axis: grid config, spec layout, reports, rate tables, the demo and bench"),
        ["GradientCheckpointing"] = (10, "the models' own switch, also in bench and scoring"),
        ["BaseDtype"] = (15, "every command that loads a model"),
        ["BatchSize"] = (8, "the grid's budget, compared by reports"),
        ["UseRsLora"] = (8, "PEFT's adapter_config.json reads and writes it"),
        ["TargetModules"] = (6, "PEFT's adapter_config.json reads and writes it"),
        ["SourceWindows"] = (9, "scored by eval as well as train"),
        ["RecordDeltaSpectra"] = (7, "not a hyperparameter: the fingerprint and the grid name it"),
        ["CheckpointEvery"] = (5, "plumbing: the CLI, the recipe, RunPlumbing and the grid's cells"),
        ["TensorBoardDir"] = (5, "plumbing: train, run-job and experiment"),
    };

    [GeneratedRegex("^[A-Z][a-z0-9]+[A-Z]")]
    private static partial Regex Compound();

    /// <summary>The settings of the run's records with a compound name (the held records themselves aside).</summary>
    static IEnumerable<string> Options() =>
        new[] { typeof(TrainerOptions), typeof(LoraConfig), typeof(ChainConfig), typeof(TrainRecipeOptions), typeof(RunPlumbing) }
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            .Where(p => p.SetMethod is not null && Compound().IsMatch(p.Name)
                && !(p.PropertyType.IsClass && p.PropertyType.Namespace!.StartsWith("ChainLora", StringComparison.Ordinal)))
            .Select(p => p.Name).Distinct();

    [Fact]
    public void No_option_is_copied_into_more_files_than_its_record_cli_use_and_one_reader()
    {
        var src = RepoFiles.Require("src");
        var files = Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText).ToList();
        var options = Options().ToList();
        Assert.Superset(new HashSet<string> { "WarmupRatio", "MaxGradNorm", "AlphaPolicy", "KnotFractions", "TrainOnInputs", "LearningRate" }, options.ToHashSet());
        var spread = options.ToDictionary(o => o, o => files.Count(text => Regex.IsMatch(text, $@"\b{o}\b")));
        var over = spread.Where(s => s.Value > (Wider.TryGetValue(s.Key, out var w) ? w.Files : 4))
            .Select(s => $"{s.Key}: {s.Value} files").ToList();
        Assert.True(over.Count == 0, "options copied into more files than before (write the record whole instead): " + string.Join(", ", over));
        Assert.All(Wider, w => Assert.True(spread.ContainsKey(w.Key), $"{w.Key} is no longer an option; drop it from the list"));
    }
}
