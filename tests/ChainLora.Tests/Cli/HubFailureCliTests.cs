using System.Diagnostics;
using System.Text;

namespace ChainLora.Tests.Cli;

/// <summary>
/// `--model org/tiny` from a child process (its own environment, its own signals) against FakeHub on
/// 127.0.0.1 when the download goes wrong: a stalled body (the read timeout, Ctrl+C and SIGTERM), a
/// huge error body, a full disk, bad settings and bad answers. Each ends the process promptly with the
/// right exit code and one line that says what happened and what was kept.
/// </summary>
public sealed class HubFailureCliTests : IDisposable
{
    const string Commit = "0123456789abcdef0123456789abcdef01234567";
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    readonly string root = Directory.CreateTempSubdirectory("chainlora-hubfailcli-").FullName;
    readonly FakeHub hub = new();
    readonly byte[] weights = new byte[512 << 10];

    public HubFailureCliTests()
    {
        new Random(25).NextBytes(weights);
        hub.Add(new FakeHub.Repo("org/tiny", Commit, Files("{\"model_type\": \"llama\"}")));
    }

    public void Dispose()
    {
        hub.Dispose();
        Directory.Delete(root, recursive: true);
    }

    string PathIn(string name) => Path.Combine(root, name);

    Dictionary<string, byte[]> Files(string config) => new()
    {
        ["config.json"] = Encoding.UTF8.GetBytes(config),
        ["tokenizer.json"] = Encoding.UTF8.GetBytes("{\"model\": {}}"),
        ["model.safetensors"] = weights,
    };

    /// <summary>Every Hugging Face variable the child reads, set: the test process's own (other tests change them) never leak in.</summary>
    Dictionary<string, string> Environment(string? cache = null, string timeout = "10") => new()
    {
        ["HF_ENDPOINT"] = hub.Endpoint,
        ["HF_HUB_CACHE"] = cache ?? PathIn("hub"),
        ["HF_HOME"] = PathIn("hf-home"),
        ["HF_TOKEN"] = "",
        ["HF_HUB_OFFLINE"] = "",
        ["TRANSFORMERS_OFFLINE"] = "",
        ["HF_HUB_DOWNLOAD_TIMEOUT"] = timeout,
    };

    static readonly string[] Generate = ["generate", "--model", "org/tiny", "--prompt", "Once"];

    string[] Command(string name) => name switch
    {
        "generate" => Generate,
        "train" => ["train", "--model", "org/tiny", "--task", "lm", "--data", TextFile(), "--out", PathIn("run")],
        _ => throw new ArgumentException(name),
    };

    string TextFile()
    {
        var path = PathIn("text.txt");
        File.WriteAllText(path, "Once upon a time there was a tiny model.");
        return path;
    }

    /// <summary>stderr without the "downloaded FILE" progress lines: what must be one line.</summary>
    static string[] Messages(string stderr) =>
        [.. stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith("downloaded ", StringComparison.Ordinal))];

    string Incomplete => Path.Combine(PathIn("hub"), "models--org--tiny", "blobs", FakeHub.Sha256(weights) + ".incomplete");

    [Fact]
    public void A_stalled_download_fails_after_HF_HUB_DOWNLOAD_TIMEOUT_with_one_line_and_keeps_the_partial_blob()
    {
        hub.StallOnce("model.safetensors", 1000);
        var clock = Stopwatch.StartNew();

        var (exit, _, error) = CliProcess.Run(Generate, Environment(timeout: "1"), Limit);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        Assert.Equal(1, exit);
        var message = Assert.Single(Messages(error));
        Assert.StartsWith("failed: PartialDownloadException: model.safetensors: download from http://127.0.0.1:", message);
        Assert.Contains("no data for 1 s (HF_HUB_DOWNLOAD_TIMEOUT)", message);
        Assert.Contains($"is kept at {Incomplete}, and the next run resumes from it", message);
        Assert.Equal(1000, new FileInfo(Incomplete).Length);
    }

    [Theory]
    [InlineData("HF_HUB_DOWNLOAD_TIMEOUT", "abc")]
    [InlineData("HF_HUB_DOWNLOAD_TIMEOUT", "0")]
    [InlineData("HF_ENDPOINT", "ftp://mirror.example")]
    [InlineData("HF_ENDPOINT", "127.0.0.1:18080")]
    public void A_bad_hub_variable_is_exit_2_and_one_line_naming_it(string variable, string value)
    {
        var environment = Environment();
        environment[variable] = value;

        var (exit, _, error) = CliProcess.Run(Generate, environment, Limit);

        Assert.Equal(2, exit);
        Assert.StartsWith($"error: {variable} '{value}': expected", Assert.Single(Messages(error)));
        Assert.Empty(hub.Requests);
    }

    /// <summary>
    /// Ctrl+C or SIGTERM while a download is stalled: the shared stop token reaches the download,
    /// which ends at once with exit 130 and one line naming the partial blob kept for resuming. train
    /// used to catch the signal and never pass it on, so only SIGKILL ended it.
    /// </summary>
    [Theory]
    [InlineData("train", 2)]
    [InlineData("train", 15)]
    [InlineData("generate", 2)]
    [InlineData("generate", 15)]
    public async Task A_signal_during_a_download_ends_it_at_once_with_130_and_one_line(string command, int signal)
    {
        hub.StallOnce("model.safetensors", 1000);
        using var process = CliProcess.StartSignallable(Command(command), Environment(timeout: "600"));
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        _ = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await hub.Stalled.WaitAsync(Limit, TestContext.Current.CancellationToken);
        // The bytes sent before the stall reach the partial blob (written unbuffered) a moment later.
        var deadline = Stopwatch.StartNew();
        while ((File.Exists(Incomplete) ? new FileInfo(Incomplete).Length : 0) < 1000 && deadline.Elapsed < Limit)
            await Task.Delay(10, TestContext.Current.CancellationToken);

        var clock = Stopwatch.StartNew();
        CliProcess.Signal(process, signal);
        var stopped = process.WaitForExit(TimeSpan.FromSeconds(20));
        if (!stopped) process.Kill();

        Assert.True(stopped, $"still running {clock.Elapsed.TotalSeconds:F0} s after signal {signal}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed.TotalSeconds:F1} s to stop");
        Assert.Equal(130, process.ExitCode);
        var message = Assert.Single(Messages(await error));
        Assert.StartsWith("interrupted: model.safetensors: download stopped; the partial download (", message);
        Assert.EndsWith($"is kept at {Incomplete}, and the next run resumes from it", message);
        Assert.False(File.Exists(PathIn("run/result.json")));
    }

    /// <summary>
    /// A 500 with a 256 MiB body: the child reads 64 KiB of it and stays small (it used to read it
    /// whole, and a 1.9 GB body peaked at 3.9 GB and ran out of memory). A server error is exit 1.
    /// </summary>
    [Fact]
    public async Task A_huge_error_body_is_exit_1_and_one_line_and_the_process_stays_small()
    {
        const long size = 256L << 20;
        hub.Answer(r => r.Path.StartsWith("/api/models/", StringComparison.Ordinal), async (stream, stop) =>
        {
            await FakeHub.WriteHeadAsync(stream, 500, [("Content-Type", "text/html")], size);
            var chunk = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("<p>overloaded</p>\n", 8192)));
            for (long sent = 0; sent < size; sent += chunk.Length) await stream.WriteAsync(chunk, stop);
        });

        using var process = CliProcess.Start(Generate, Environment());
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        _ = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        long peak = 0;
        var clock = Stopwatch.StartNew();
        while (!process.HasExited && clock.Elapsed < Limit)
        {
            peak = Math.Max(peak, PeakResidentBytes(process.Id));
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(10)), "still running");

        Assert.Equal(1, process.ExitCode);
        var message = Assert.Single(Messages(await error));
        Assert.StartsWith("failed: HttpRequestException: org/tiny@main: HTTP 500", message);
        Assert.Contains($"from {hub.Endpoint}/api/models/org/tiny/revision/main: overloaded overloaded", message);
        Assert.True(peak < 200 << 20, $"peak resident memory {peak >> 20} MiB");
    }

    /// <summary>VmHWM of a live process, 0 once it is gone.</summary>
    static long PeakResidentBytes(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>
    /// The disk fills during the download: the message used to follow "downloaded model.safetensors"
    /// with "nothing half-written was kept", though the partial blob is kept on purpose. Now it names
    /// it, and once there is space the next run resumes from it.
    /// </summary>
    [Fact]
    public void A_full_disk_during_a_download_says_where_the_partial_blob_is_kept_and_the_next_run_resumes()
    {
        using var disk = new SmallDisk(1 << 20);
        var cache = disk.PathIn("hub");
        Directory.CreateDirectory(cache);
        disk.Fill(leaveBytes: 128 << 10);

        var (exit, _, error) = CliProcess.Run(Generate, Environment(cache), Limit);

        Assert.Equal(1, exit);
        Assert.DoesNotContain("downloaded model.safetensors", error);
        var message = Assert.Single(Messages(error));
        var incomplete = Path.Combine(cache, "models--org--tiny", "blobs", FakeHub.Sha256(weights) + ".incomplete");
        Assert.StartsWith("failed: the disk is full: model.safetensors: download from", message);
        Assert.Contains("No space left on device", message);
        Assert.Contains($"is kept at {incomplete}, and the next run resumes from it", message);
        Assert.DoesNotContain("nothing half-written", message);
        var kept = new FileInfo(incomplete).Length;
        Assert.InRange(kept, 1, weights.Length - 1);

        disk.Free();
        CliProcess.Run(Generate, Environment(cache), Limit);

        Assert.Contains(hub.Requests, r => r.Cdn && r.Header("Range") == $"bytes={kept}-");
        Assert.Equal(weights, File.ReadAllBytes(incomplete[..^".incomplete".Length]));
    }

    [Fact]
    public void An_etag_too_long_for_a_file_name_is_a_server_fault_exit_1_naming_the_file()
    {
        hub.Answer(r => r.Method == "HEAD" && r.Path.EndsWith("/config.json", StringComparison.Ordinal), (stream, _) =>
            FakeHub.WriteHeadAsync(stream, 200, [("X-Repo-Commit", Commit), ("ETag", new string('e', 300))], 10));

        var (exit, _, error) = CliProcess.Run(Generate, Environment(), Limit);

        Assert.Equal(1, exit);
        var message = Assert.Single(Messages(error));
        Assert.StartsWith("failed: HubResponseException: HEAD ", message);
        Assert.Contains("ETag of 300 characters", message);
        Assert.Contains("config.json", message);
    }

    [Fact]
    public void A_config_json_from_the_hub_that_is_not_json_is_exit_2_and_one_line()
    {
        hub.Add(new FakeHub.Repo("org/bad", Commit, Files("not json\nat all\n")));

        var (exit, _, error) = CliProcess.Run(["generate", "--model", "org/bad", "--prompt", "Once"], Environment(), Limit);

        Assert.Equal(2, exit);
        var message = Assert.Single(Messages(error));
        Assert.Contains("config.json: not valid JSON ('not json at all ' is an invalid JSON literal", message);
    }

    [Fact]
    public void A_hub_id_with_an_empty_revision_is_refused_by_name_not_as_a_missing_folder()
    {
        var (exit, _, error) = CliHarness.Run("generate", "--model", "org/tiny@", "--prompt", "Once");

        Assert.Equal(2, exit);
        Assert.Equal("error: model 'org/tiny@': empty revision after '@'", error.Trim());
    }
}
