using System.Diagnostics;
using System.Text.Json.Nodes;
using ChainLora.IO;

namespace ChainLora.Tests.Recipes;

/// <summary>
/// `train --resume` after killing a real `chainlora train` process, and `--adapter` on eval and
/// train, on stories260K's lm task (skip without ../shared).
/// </summary>
public sealed class ResumeAndAdapterTests(ResumeAndAdapterTests.UninterruptedRun uninterrupted)
    : IDisposable, IClassFixture<ResumeAndAdapterTests.UninterruptedRun>
{
    readonly DirectoryInfo temp = Directory.CreateTempSubdirectory("chainlora-resume-");

    public void Dispose() => temp.Delete(recursive: true);

    /// <summary>
    /// <see cref="ColaRun"/> run once to its end, shared by the tests that interrupt it: its result
    /// and its folder (for the saved chain). Run on first use, so a missing ../shared skips the test.
    /// </summary>
    public sealed class UninterruptedRun : IDisposable
    {
        readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("chainlora-uninterrupted-");
        readonly Lazy<JsonNode> result;

        public UninterruptedRun() => result = new(() => RunToEnd(With(ColaRun, "--out", Folder)));

        public string Folder => Path.Combine(folder.FullName, "run");
        public JsonNode Result => result.Value;

        public void Dispose() => folder.Delete(recursive: true);
    }

    static string Model => SharedData.Require("models/stories260K");
    static string Text => SharedData.Require("corpus/tinystories-sample.txt");

    // 40 windows of 512 tokens, batch 4: 10 steps per epoch, 30 steps, knots at steps 10 and 20.
    static readonly string[] ColaRun =
    [
        "train", "--task", "lm", "--method", "cola", "--chain-length", "3", "--num-train", "40", "--num-dev", "4",
        "--num-eval", "8", "--batch-size", "4", "--epochs", "3", "--lr", "3e-3", "--seed", "3", "--checkpoint-every", "4", "--json",
    ];

    string PathIn(string name) => Path.Combine(temp.FullName, name);

    static string[] With(string[] args, params string[] extra) => [.. args, "--model", Model, "--data", Text, .. extra];

    static Process Start(IEnumerable<string> args, string? fault = null) =>
        CliProcess.Start(args, fault is null ? null : new Dictionary<string, string> { [ChainLora.Runtime.FaultInjection.Variable] = fault });

    static JsonNode RunToEnd(IEnumerable<string> args)
    {
        using var process = Start(args);
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, error.Result);
        return JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
    }

    static List<double> StepLosses(JsonNode result) =>
        result["training"]!["links"]!.AsArray().SelectMany(l => l!["losses"]!.AsArray().Select(x => (double)x!)).ToList();

    /// <summary>A resumed run's test NLL and every step's loss equal the uninterrupted run's.</summary>
    static void AssertSameRun(JsonNode expected, JsonNode resumed)
    {
        Assert.Equal((double)expected["test"]!["nll_per_token"]!, (double)resumed["test"]!["nll_per_token"]!, 1e-9);
        Assert.Equal(StepLosses(expected), StepLosses(resumed));
    }

    static int LoggedSteps(string log)
    {
        try
        {
            using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Split('\n').Count(l => l.Contains("\"loss\"", StringComparison.Ordinal) && l.EndsWith('}'));
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [Fact]
    public void A_killed_train_process_resumes_to_the_same_weights_and_metrics()
    {
        var (whole, expected) = (uninterrupted.Folder, uninterrupted.Result);

        var killed = PathIn("killed");
        var log = Path.Combine(killed, "train_log.jsonl");
        using (var process = Start(With(ColaRun, "--out", killed)))
        {
            _ = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            // Past the first knot and a few steps into the second link: the newest checkpoint is at step 12 or 16.
            var deadline = Stopwatch.StartNew();
            while (LoggedSteps(log) < 15 && !process.HasExited && deadline.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(5);
            Assert.False(process.HasExited, "the run ended before it could be killed");
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        Assert.False(File.Exists(Path.Combine(killed, "result.json")), "the killed run wrote its result");
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(killed, "checkpoint", "state.json")))!;
        Assert.InRange((int)state["Step"]!, 12, 29);

        var resumed = RunToEnd(With(ColaRun, "--out", killed, "--resume", killed));

        Assert.Equal((double)expected["test"]!["nll_per_token"]!, (double)resumed["test"]!["nll_per_token"]!, 1e-9);
        Assert.Equal((double)expected["dev"]!["nll_per_token"]!, (double)resumed["dev"]!["nll_per_token"]!, 1e-9);
        var (lossesA, lossesB) = (StepLosses(expected), StepLosses(resumed));
        Assert.Equal(30, lossesA.Count);
        Assert.Equal(lossesA, lossesB);
        Assert.Equal((double)expected["training_flops"]!, (double)resumed["training_flops"]!, 1e-3);

        // The trained chain (every link's A and B) agrees to 1e-6.
        var a = SafeTensors.Load(Path.Combine(whole, "chain", "links.safetensors"));
        var b = SafeTensors.Load(Path.Combine(killed, "chain", "links.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.Contains(a.Keys, k => k.EndsWith(".link2.A", StringComparison.Ordinal));
        foreach (var (name, t) in a)
        {
            var diff = (t - b[name]).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"{name}: max |Δ| = {diff:E2}");
        }
        // The log was trimmed to the checkpoint and continued: one line per step, no duplicates.
        var steps = File.ReadAllLines(Path.Combine(killed, "train_log.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(n => n["loss"] is not null).Select(n => (int)n["step"]!).ToList();
        Assert.Equal(Enumerable.Range(1, 30), steps);
    }

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task A_signalled_train_process_checkpoints_exits_130_and_resumes_exactly(string signal)
    {
        var expected = uninterrupted.Result;
        var stopped = PathIn("stopped-" + signal);
        var log = Path.Combine(stopped, "train_log.jsonl");
        // SIGINT at its default in the child even when this test run ignores it (a background job, nohup).
        using (var process = CliProcess.StartSignallable(With(ColaRun, "--out", stopped)))
        {
            var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var deadline = Stopwatch.StartNew();
            while (LoggedSteps(log) < 2 && !process.HasExited && deadline.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(1);
            Assert.False(process.HasExited, "the run ended before it could be signalled");
            // Signalled from here, at once: starting `kill` took long enough for the 30-step run to finish first.
            CliProcess.Signal(process, signal == "INT" ? 2 : 15);
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the run did not stop");
            Assert.Equal(130, process.ExitCode);
            Assert.Contains("checkpoint saved in", await error);
        }
        Assert.False(File.Exists(Path.Combine(stopped, "result.json")));
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(stopped, "checkpoint", "state.json")))!;
        Assert.Equal(LoggedSteps(log), (int)state["Step"]!);          // the checkpoint is the last logged step
        var resumed = RunToEnd(With(ColaRun, "--out", stopped, "--resume", stopped));
        AssertSameRun(expected, resumed);
    }

    [Theory]
    [InlineData("knot:1")]             // killed after the first layer of the first knot merged, the others not
    [InlineData("checkpoint-write:3")] // killed with a checkpoint half-written in its temporary folder
    [InlineData("checkpoint-swap:3")]  // killed with the old checkpoint moved aside and the new one not yet in
    public async Task A_process_killed_at_a_fault_point_resumes_exactly(string fault)
    {
        var expected = uninterrupted.Result;
        var killed = PathIn("fault-" + fault.Replace(':', '-'));
        using (var process = Start(With(ColaRun, "--out", killed), fault))
        {
            var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "the run did not stop");
            await output;
            Assert.Equal(137, process.ExitCode);                        // SIGKILL, as kill -9
        }
        Assert.False(File.Exists(Path.Combine(killed, "result.json")));
        var resumed = RunToEnd(With(ColaRun, "--out", killed, "--resume", killed));
        AssertSameRun(expected, resumed);
        Assert.Empty(Directory.GetDirectories(killed, ".checkpoint.*"));  // nothing half-written left behind
    }

    /// <summary>
    /// Ten kills of one run, each followed by a resume: the kill points (a knot, a checkpoint write,
    /// a checkpoint swap, and seven after a random number of backward passes or optimizer steps) are
    /// drawn from a seed, so a failure replays. The run then ends with the uninterrupted run's
    /// metrics, every step's loss, and byte-identical saved weights.
    /// </summary>
    [Fact]
    public async Task Killed_at_ten_random_points_the_run_ends_exactly_as_if_uninterrupted()
    {
        var random = new Random(20261202);
        string Drawn() => $"{(random.Next(2) == 0 ? "backward" : "step")}:{random.Next(1, 7)}";
        // The first kill comes before step 7, so the knot at step 10 still lies ahead of the second.
        var rest = new[] { "checkpoint-write:1", "checkpoint-swap:1" }.Concat(Enumerable.Range(0, 6).Select(_ => Drawn())).ToList();
        var faults = new[] { Drawn(), "knot:1" }.Concat(rest.OrderBy(_ => random.Next())).ToList();
        var dir = PathIn("ten-kills");
        var checkpointSteps = new List<int>();
        foreach (var drawn in faults)
        {
            // As a user would: resume when a checkpoint exists, under its name or the hidden one a killed swap left.
            AtomicFolder.Recover(Path.Combine(dir, "checkpoint"));
            var state = Path.Combine(dir, "checkpoint", "state.json");
            var step = File.Exists(state) ? (int)JsonNode.Parse(await File.ReadAllTextAsync(state, TestContext.Current.CancellationToken))!["Step"]! : 0;
            // A step or backward kill is kept inside the run (30 steps), so every process dies before its end.
            var fault = drawn.Split(':') is [var point and ("step" or "backward"), var n] ? $"{point}:{Math.Min(int.Parse(n), 29 - step)}" : drawn;
            string[] start = File.Exists(state) ? ["--resume", dir] : ["--overwrite"];
            using var process = Start(With(ColaRun, ["--out", dir, .. start]), fault);
            var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), $"{fault}: the run did not stop");
            Assert.True(process.ExitCode == 137, $"{fault} from step {step}: exit {process.ExitCode}, not killed: {await error}");
            checkpointSteps.Add(step);
            TestContext.Current.TestOutputHelper?.WriteLine($"{fault} from step {step}: log has {LoggedSteps(Path.Combine(dir, "train_log.jsonl"))} steps");
            Assert.False(File.Exists(Path.Combine(dir, "result.json")), $"{fault}: the killed run wrote its result");
        }
        Assert.Equal(10, checkpointSteps.Count);
        Assert.True(checkpointSteps.Distinct().Count() >= 4, $"the kills did not spread over the run: resumed from steps {string.Join(", ", checkpointSteps)}");

        var resumed = RunToEnd(With(ColaRun, "--out", dir, "--resume", dir));
        AssertSameRun(uninterrupted.Result, resumed);
        Assert.Equal((double)uninterrupted.Result["dev"]!["nll_per_token"]!, (double)resumed["dev"]!["nll_per_token"]!, 1e-9);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(uninterrupted.Folder, "chain", "links.safetensors"), TestContext.Current.CancellationToken),
            await File.ReadAllBytesAsync(Path.Combine(dir, "chain", "links.safetensors"), TestContext.Current.CancellationToken));
        Assert.Empty(Directory.GetDirectories(dir, ".checkpoint.*"));
        var steps = File.ReadAllLines(Path.Combine(dir, "train_log.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(n => n["loss"] is not null).Select(n => (int)n["step"]!).ToList();
        Assert.Equal(Enumerable.Range(1, 30), steps);
    }

    [Fact]
    public async Task A_checkpoint_onto_a_full_disk_keeps_the_previous_one_and_the_run_resumes_exactly_once_there_is_space()
    {
        using var disk = new SmallDisk(16 << 20);
        var dir = disk.PathIn("run");
        using (var process = Start(With(ColaRun, "--out", dir), "step:6"))
        {
            _ = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            _ = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "the run did not stop");
            Assert.Equal(137, process.ExitCode);
        }
        var state = Path.Combine(dir, "checkpoint", "state.json");
        var saved = await File.ReadAllBytesAsync(state, TestContext.Current.CancellationToken);
        Assert.Equal(4, (int)JsonNode.Parse(saved)!["Step"]!);

        // Room for a few log lines, not for the checkpoint at step 8.
        disk.Fill(leaveBytes: 16 << 10);
        var (exit, _, error) = CliProcess.Run(With(ColaRun, "--out", dir, "--resume", dir));
        Assert.Equal(1, exit);
        Assert.Contains("the disk is full", error);
        Assert.Equal(saved, await File.ReadAllBytesAsync(state, TestContext.Current.CancellationToken));
        Assert.Empty(Directory.GetDirectories(dir, ".checkpoint.*"));
        Assert.False(File.Exists(Path.Combine(dir, "result.json")));

        disk.Free();
        AssertSameRun(uninterrupted.Result, RunToEnd(With(ColaRun, "--out", dir, "--resume", dir)));
    }

    [Fact]
    public void Resume_names_a_folder_without_a_checkpoint()
    {
        var missing = PathIn("nothing-here");
        Directory.CreateDirectory(missing);
        var (exit, _, error) = CliHarness.Run(With(ColaRun, "--out", PathIn("out"), "--resume", missing));
        Assert.Equal(2, exit);
        Assert.Contains("nothing-here", error);
        Assert.Contains("state.json", error);
    }

    [Fact]
    public void An_exported_adapter_evaluates_and_trains_on_from_where_the_run_ended()
    {
        string[] lmRun =
        [
            "train", "--task", "lm", "--method", "cola", "--chain-length", "2", "--ranks", "8,4", "--num-train", "16", "--num-dev", "4",
            "--num-eval", "8", "--batch-size", "4", "--epochs", "2", "--seed", "1", "--json",
        ];
        var run = PathIn("run");
        var (exit, output, error) = CliHarness.Run(With(lmRun, "--lr", "5e-3", "--out", run));
        Assert.True(exit == 0, error);
        var trained = JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        var adapter = PathIn("adapter");
        (exit, _, error) = CliHarness.Run("export", "--run", run, "--format", "peft", "--out", adapter);
        Assert.True(exit == 0, error);

        string[] evalArgs = ["eval", "--model", Model, "--task", "lm", "--data", Text, "--num-train", "16", "--num-eval", "8", "--seed", "1", "--json"];
        (exit, output, error) = CliHarness.Run([.. evalArgs, "--adapter", adapter]);
        Assert.True(exit == 0, error);
        var withAdapter = JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        (exit, output, error) = CliHarness.Run(evalArgs);
        Assert.True(exit == 0, error);
        var without = JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;

        var trainedNll = (double)trained["test"]!["nll_per_token"]!;
        Assert.Equal(trainedNll, (double)withAdapter["test"]!["nll_per_token"]!, 1e-4);
        Assert.True((double)without["test"]!["nll_per_token"]! - trainedNll > 1e-3, "training changed nothing measurable");
        Assert.Equal(Path.GetFullPath(adapter), (string)withAdapter["adapter"]!);

        // Training on from the adapter with a vanishing learning rate keeps the trained model.
        var onward = PathIn("onward");
        (exit, output, error) = CliHarness.Run(With(lmRun, "--lr", "1e-12", "--out", onward, "--adapter", adapter));
        Assert.True(exit == 0, error);
        var continued = JsonNode.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.Equal(trainedNll, (double)continued["test"]!["nll_per_token"]!, 1e-4);
        Assert.Equal(Path.GetFullPath(adapter), (string)continued["hyperparameters"]!["adapter"]!);
    }

    [Fact]
    public void Eval_names_a_missing_adapter_folder()
    {
        var (exit, _, error) = CliHarness.Run("eval", "--model", Model, "--task", "lm", "--data", Text, "--num-eval", "2",
            "--adapter", PathIn("no-adapter"));
        Assert.Equal(2, exit);
        Assert.Contains("no-adapter", error);
    }
}
