// Collects finished jobs and applies the paper's protocol (Appendix A.1): per task and method,
// the learning rate with the best mean dev score over seeds, then test mean ± std over seeds.
using System.Text.Json.Nodes;
using ChainLora.Tasks;

namespace ChainLora.Experiments;

/// <summary>
/// A finished job: its spec and the numbers of its result.json; <paramref name="SourceNll"/> is the NLL per token on the
/// model's own domain after training (forgetting), when the cell scored one.
/// </summary>
public sealed record JobResult(JobSpec Spec, double? Dev, double Test, string Metric, double Flops, string Directory, double? SourceNll = null,
    IReadOnlyList<double>? DeltaEffectiveRanks = null);

/// <summary>One (task, method) cell after learning-rate selection; <paramref name="Rates"/> says whether the choice is bracketed (rows that train).</summary>
public sealed record CellSummary(string Task, string Method, JobSpec Example, double? BestLearningRate, string Metric,
    double Mean, double Std, int Seeds, double Flops, IReadOnlyList<JobResult> Runs, RateChoice? Rates = null);

public static class ResultTable
{
    /// <summary>
    /// Every job under <c>DIR/jobs</c> that has a result.json; others are ignored. A job whose spec
    /// or result cannot be read is left out too, its reason added to <paramref name="skipped"/>
    /// when given (and thrown when not).
    /// </summary>
    public static List<JobResult> Load(string dir, List<string>? skipped = null)
    {
        var jobs = Path.Combine(dir, "jobs");
        if (!System.IO.Directory.Exists(jobs)) throw new DirectoryNotFoundException($"no jobs folder in {dir}");
        var results = new List<JobResult>();
        foreach (var jobDir in System.IO.Directory.GetDirectories(jobs).Order(StringComparer.Ordinal))
        {
            var specPath = Path.Combine(jobDir, "spec.json");
            var resultPath = Path.Combine(jobDir, "result.json");
            if (!File.Exists(specPath) || !File.Exists(resultPath)) continue;
            try
            {
                results.Add(Read(JobSpec.Load(specPath), resultPath, jobDir));
            }
            catch (Exception e) when (skipped is not null && e is InvalidDataException or InvalidOperationException or FormatException or System.Text.Json.JsonException)
            {
                skipped.Add($"{jobDir}: {e.Message}");
            }
        }
        return results;
    }

    /// <summary>
    /// <paramref name="spec"/>'s result from <paramref name="resultPath"/>; a file that is not JSON, or
    /// lacks the metrics or has a field of the wrong type, is an InvalidDataException naming it.
    /// </summary>
    public static JobResult Read(JobSpec spec, string resultPath, string jobDir)
    {
        JsonNode root;
        try { root = JsonNode.Parse(File.ReadAllText(resultPath)) ?? throw new InvalidDataException($"{resultPath}: empty"); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{resultPath}: {e.Message}", e); }
        try
        {
            var diverged = root["status"]?.GetValue<string>() == "diverged";
            // A diverged run scores -infinity: the learning rate that made it is never the best.
            var (metric, test) = diverged ? (MetricOf(spec), double.NegativeInfinity) : Primary(root["test"], resultPath);
            double? dev = diverged ? double.NegativeInfinity : root["dev"] is JsonObject d && d.Count > 0 ? Primary(d, resultPath).Value : null;
            var flops = root["training_flops"]?.GetValue<double>() ?? 0;
            var source = diverged ? null : root["source"]?["nll_per_token"]?.GetValue<double>();
            var ranks = root["training"]?["links"] is JsonArray links && links.All(l => l?["delta_effective_rank"] is not null)
                ? links.Select(l => l!["delta_effective_rank"]!.GetValue<double>()).ToList() : null;
            return new JobResult(spec, dev, test, metric, flops, jobDir, source, ranks is { Count: > 0 } ? ranks : null);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{resultPath}: {e.Message}", e);  // a field of the wrong type
        }
    }

    /// <summary>
    /// The headline metric, oriented so that higher is better: accuracy, else F1, else minus
    /// the NLL per token (language modelling; sft: per response token).
    /// </summary>
    public static (string Metric, double Value) Primary(JsonNode? metrics, string source)
    {
        if (metrics?["accuracy"] is { } a) return ("accuracy", a.GetValue<double>());
        if (metrics?["f1"] is { } f) return ("f1", f.GetValue<double>());
        if ((metrics?["nll_per_token"] ?? metrics?["response_nll"]) is { } n) return ("-nll", -n.GetValue<double>());
        throw new InvalidDataException($"{source}: no accuracy, f1, nll_per_token or response_nll in its metrics");
    }

    /// <summary>The metric a diverged run of <paramref name="spec"/>'s task would have reported.</summary>
    static string MetricOf(JobSpec spec) =>
        TaskRegistry.All.FirstOrDefault(t => t.Name.Equals(spec.Task, StringComparison.OrdinalIgnoreCase))?.Kind switch
        {
            TaskKind.LanguageModelling or TaskKind.Sft => "-nll",
            TaskKind.Generation => "f1",
            null => throw new InvalidDataException($"job {spec.Id}: unknown task '{spec.Task}'"),
            _ => "accuracy",
        };

    /// <summary>
    /// Every job spec under <c>DIR/jobs</c>, finished or not: the grid as planned, so a report can tell
    /// a neighbouring rate that never ran from one that ran and lost. Unreadable specs are left out.
    /// </summary>
    public static List<JobSpec> Planned(string dir)
    {
        var jobs = Path.Combine(dir, "jobs");
        if (!System.IO.Directory.Exists(jobs)) return [];
        var specs = new List<JobSpec>();
        foreach (var path in System.IO.Directory.GetDirectories(jobs).Order(StringComparer.Ordinal).Select(d => Path.Combine(d, "spec.json")).Where(File.Exists))
        {
            try { specs.Add(JobSpec.Load(path)); }
            catch (InvalidDataException) { }   // Load names it when the cell's result is read
        }
        return specs;
    }

    /// <summary>
    /// Per (task, method): the rate with the best mean dev score (<see cref="LearningRates.Choose"/>), its test mean ± std over seeds, and
    /// where the rate sits in the row's grid (<paramref name="planned"/> adds rates not finished yet).
    /// </summary>
    public static List<CellSummary> Summarize(IEnumerable<JobResult> results, IEnumerable<JobSpec>? planned = null)
    {
        var plannedRates = (planned ?? []).Where(s => s.Kind.Trains()).GroupBy(s => (s.Task, s.Method))
            .ToDictionary(g => g.Key, g => g.Select(s => s.LearningRate).Distinct().ToList());
        return results.GroupBy(r => (r.Spec.Task, r.Spec.Method))
        .Select(g =>
        {
            var chosen = LearningRates.Choose(g.ToList());
            var best = g.Where(r => r.Spec.LearningRate == chosen).ToList();
            var tests = best.Select(r => r.Test).ToList();
            var mean = tests.Average();
            var std = tests.Count > 1 ? Math.Sqrt(tests.Sum(t => (t - mean) * (t - mean)) / (tests.Count - 1)) : 0;
            var first = best.First();
            var trains = first.Spec.Kind.Trains();
            var choice = trains ? RateChoice.Of(g.ToList(), chosen, plannedRates.GetValueOrDefault(g.Key, [])) : null;
            return new CellSummary(g.Key.Task, g.Key.Method, first.Spec, trains ? chosen : null,
                first.Metric, mean, std, tests.Count, best.Average(r => r.Flops), best, choice);
        })
        .ToList();
    }
}
