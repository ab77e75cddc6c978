using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChainLora.Experiments;

namespace ChainLora.Tests.Recipes;

/// <summary>
/// What the options record writes stays what users and finished grid cells already hold: a COLA run's
/// result.json (keys, their order and values; timings and paths left out) equals the approved one
/// written before the record existed, and every committed lm2 spec reads back to its own bytes and id.
/// </summary>
public sealed class OptionsRecordApprovalTests : TempFolderTest
{
    [Theory]
    [InlineData("result-lm-cola.json", new[] { "--method", "cola", "--chain-length", "2", "--ranks", "4,2", "--warmup-ratio", "0.1", "--delta-spectra" })]
    [InlineData("result-lm-full.json", new[] { "--method", "full", "--max-grad-norm", "1", "--weight-decay", "0.01" })]
    [InlineData("result-sst2-lora.json", new[] { "--method", "lora", "--optimizer", "sgd", "--momentum", "0.9", "--targets", "q_proj,k_proj,v_proj" })]
    public void A_train_run_writes_the_result_approved_before_the_options_record(string approval, string[] method)
    {
        var model = SharedData.Require("models/stories260K");
        var lm = approval.Contains("-lm-");
        var data = SharedData.Require(lm ? "corpus/tinyshakespeare.txt" : "data/sst2");
        var outDir = PathIn("run");
        string[] sizes = lm ? ["--num-train", "16", "--num-dev", "4", "--num-eval", "4", "--context", "32"] : ["--num-train", "16", "--num-dev", "8", "--num-eval", "8"];
        var (exit, _, error) = CliHarness.Run(["train", "--model", model, "--task", lm ? "lm" : "sst2", "--data", data, "--out", outDir,
            "--epochs", "2", "--batch-size", "4", "--lr", "2e-3", "--seed", "5", .. sizes, .. method]);
        Assert.True(exit == 0, error);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")))!;
        Approvals.Verify(approval, Normalize(result, (SharedData.Root!, "SHARED"), (outDir, "OUT"))!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Timings as 0, numbers to 6 significant digits (threads may reorder a sum), and folders by name.</summary>
    static JsonNode? Normalize(JsonNode? node, params (string Path, string Name)[] folders) => node switch
    {
        JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(p.Key,
            p.Key is "seconds" or "knot_seconds" or "wall_seconds" ? JsonValue.Create(0) : Normalize(p.Value, folders)))),
        JsonArray a => new JsonArray(a.Select(x => Normalize(x, folders)).ToArray()),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number =>
            JsonValue.Create(double.Parse(v.GetValue<double>().ToString("G6", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)),
        JsonValue v when v.GetValueKind() == JsonValueKind.String =>
            JsonValue.Create(folders.Aggregate(v.GetValue<string>(), (s, f) => s.Replace(Path.GetFullPath(f.Path), f.Name))),
        _ => node?.DeepClone(),
    };

    [Fact]
    public void Every_committed_lm2_spec_reads_back_to_its_bytes_and_its_folder_id()
    {
        var jobs = RepoFiles.Require("runs/lm2/jobs");
        var specs = Directory.GetDirectories(jobs).Select(d => Path.Combine(d, "spec.json")).Where(File.Exists).ToList();
        Assert.True(specs.Count >= 400, $"only {specs.Count} specs under {jobs}");
        foreach (var path in specs)
        {
            var spec = JobSpec.Load(path);
            Assert.Equal(Path.GetFileName(Path.GetDirectoryName(path)), spec.Id);
            Assert.Equal(File.ReadAllText(path), ExperimentConfig.Serialize(spec));
        }
    }
}
