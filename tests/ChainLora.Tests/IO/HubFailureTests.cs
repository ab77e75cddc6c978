using System.Diagnostics;
using System.Text;
using ChainLora.IO.Hub;

namespace ChainLora.Tests.IO;

/// <summary>
/// HubModelResolver when the server misbehaves (FakeHub on 127.0.0.1: a stalled body, a server that
/// never answers, error pages of any size, a bad ETag) and when the cache is damaged. Every wait
/// has an end, no error body is read whole, and every message is one line naming the URL, file or path.
/// </summary>
public sealed class HubFailureTests : IDisposable
{
    const string CommitA = "0123456789abcdef0123456789abcdef01234567";

    readonly string cache = Path.Combine(Path.GetTempPath(), $"chainlora-hubfail-{Guid.NewGuid():N}");
    readonly FakeHub hub = new();

    public void Dispose()
    {
        hub.Dispose();
        if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true);
    }

    /// <summary>Options as the environment gives them, with HF_HUB_DOWNLOAD_TIMEOUT set to <paramref name="timeout"/>.</summary>
    HubOptions Options(string timeout = "10", bool offline = false) =>
        HubOptions.FromEnvironment(name => name switch
        {
            "HF_ENDPOINT" => hub.Endpoint,
            "HF_HUB_CACHE" => cache,
            "HF_HUB_DOWNLOAD_TIMEOUT" => timeout,
            "HF_HUB_OFFLINE" => offline ? "1" : null,
            _ => null,
        });

    static Task<string> ResolveAsync(string spec, HubOptions options) =>
        HubModelResolver.ResolveAsync(spec, options, cancel: TestContext.Current.CancellationToken);

    static Dictionary<string, byte[]> SmallModel(byte[] weights) => new()
    {
        ["config.json"] = Encoding.UTF8.GetBytes("{\"model_type\": \"llama\"}"),
        ["tokenizer.json"] = Encoding.UTF8.GetBytes("{\"model\": {}}"),
        ["model.safetensors"] = weights,
    };

    static byte[] Bytes(int n, int seed)
    {
        var data = new byte[n];
        new Random(seed).NextBytes(data);
        return data;
    }

    string RepoFolder(string repoId) => Path.Combine(cache, "models--" + repoId.Replace("/", "--"));

    static void AssertOneLine(string message) => Assert.DoesNotContain('\n', message);

    [Fact(Timeout = 60_000)]
    public async Task A_stalled_body_times_out_naming_the_file_and_the_timeout_and_the_partial_blob_resumes()
    {
        var weights = Bytes(40_000, 1);
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(weights)));
        hub.StallOnce("model.safetensors", 1000);
        var blob = Path.Combine(RepoFolder("org/tiny"), "blobs", FakeHub.Sha256(weights));
        var clock = Stopwatch.StartNew();

        var e = await Assert.ThrowsAnyAsync<IOException>(() => ResolveAsync("org/tiny", Options(timeout: "1")));

        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 20);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("1 s (HF_HUB_DOWNLOAD_TIMEOUT)", e.Message);
        Assert.Contains($"is kept at {blob}.incomplete", e.Message);
        AssertOneLine(e.Message);
        Assert.Equal(1000, new FileInfo(blob + ".incomplete").Length);

        var snapshot = await ResolveAsync("org/tiny", Options(timeout: "1"));

        Assert.Contains(hub.Requests, r => r.Cdn && r.Header("Range") == "bytes=1000-");
        Assert.Equal(weights, await File.ReadAllBytesAsync(Path.Combine(snapshot, "model.safetensors"), TestContext.Current.CancellationToken));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_server_that_never_answers_times_out_naming_the_request()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(Bytes(100, 2))));
        hub.Answer(r => r.Path.StartsWith("/api/models/", StringComparison.Ordinal), (_, stop) => Task.Delay(Timeout.Infinite, stop));
        var clock = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<TimeoutException>(() => ResolveAsync("org/tiny", Options(timeout: "1")));

        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 20);
        Assert.Contains($"GET {hub.Endpoint}/api/models/org/tiny/revision/main", e.Message);
        Assert.Contains("1 s (HF_HUB_DOWNLOAD_TIMEOUT)", e.Message);
    }

    [Fact]
    public void HF_HUB_DOWNLOAD_TIMEOUT_and_HF_ENDPOINT_are_read_and_bad_values_refused_by_name()
    {
        HubOptions From(string name, string value) => HubOptions.FromEnvironment(n => n == name ? value : n == "HOME" ? cache : null);

        Assert.Equal(TimeSpan.FromSeconds(10), HubOptions.FromEnvironment(n => n == "HOME" ? cache : null).DownloadTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2.5), From("HF_HUB_DOWNLOAD_TIMEOUT", "2.5").DownloadTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), From("HF_HUB_DOWNLOAD_TIMEOUT", "60").DownloadTimeout);
        foreach (var bad in new[] { "abc", "0", "-3", "NaN", "Infinity", "1e9", "10s" })
        {
            var e = Assert.Throws<ArgumentException>(() => From("HF_HUB_DOWNLOAD_TIMEOUT", bad));
            Assert.Contains($"HF_HUB_DOWNLOAD_TIMEOUT '{bad}'", e.Message);
        }

        Assert.Equal("https://mirror.example/hub", From("HF_ENDPOINT", "https://mirror.example/hub/").Endpoint);
        foreach (var bad in new[] { "ftp://mirror.example", "127.0.0.1:18080", "mirror.example", "http://", "file:///tmp/hub" })
        {
            var e = Assert.Throws<ArgumentException>(() => From("HF_ENDPOINT", bad));
            Assert.Contains($"HF_ENDPOINT '{bad}'", e.Message);
        }
    }

    /// <summary>
    /// A 500 whose body is 256 MiB (streamed, never held by the test) used to be read whole into
    /// memory; 1.9 GB took the process to 3.9 GB. Now the client reads 64 KiB and hangs up, so the
    /// server gets to send little more than the sockets buffer.
    /// </summary>
    [Fact(Timeout = 60_000)]
    public async Task A_huge_error_body_is_read_only_in_part_and_the_message_names_the_url_and_status()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(Bytes(100, 3))));
        const long size = 256L << 20;
        long sent = 0;
        hub.Answer(r => r.Path.StartsWith("/api/models/", StringComparison.Ordinal), async (stream, stop) =>
        {
            await FakeHub.WriteHeadAsync(stream, 500, [("Content-Type", "text/plain")], size);
            var line = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("upstream failure, retrying\n", 4096)));
            while (sent < size)
            {
                await stream.WriteAsync(line, stop);
                Interlocked.Add(ref sent, line.Length);
            }
        });

        var e = await Assert.ThrowsAsync<HttpRequestException>(() => ResolveAsync("org/tiny", Options()));

        Assert.Contains("HTTP 500", e.Message);
        Assert.Contains($"from {hub.Endpoint}/api/models/org/tiny/revision/main", e.Message);
        Assert.Contains("upstream failure, retrying upstream failure", e.Message);
        AssertOneLine(e.Message);
        Assert.True(e.Message.Length < 1000, e.Message);
        Assert.True(Interlocked.Read(ref sent) < 32 << 20, $"the server sent {Interlocked.Read(ref sent):N0} bytes of the error body before the client hung up");
    }

    [Fact(Timeout = 60_000)]
    public async Task An_error_body_claiming_3_GB_is_read_as_far_as_it_goes()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(Bytes(100, 4))));
        hub.Answer(r => r.Path.StartsWith("/api/models/", StringComparison.Ordinal), async (stream, stop) =>
        {
            await FakeHub.WriteHeadAsync(stream, 500, [("Content-Type", "text/plain")], 3_000_000_000);
            await stream.WriteAsync(Encoding.ASCII.GetBytes("the proxy gave up"), stop);
        });

        var e = await Assert.ThrowsAsync<HttpRequestException>(() => ResolveAsync("org/tiny", Options()));

        Assert.Contains("HTTP 500", e.Message);
        Assert.Contains($"from {hub.Endpoint}/api/models/org/tiny/revision/main: the proxy gave up", e.Message);
        Assert.DoesNotContain("Cannot write more bytes", e.Message);
    }

    [Fact]
    public async Task An_html_error_page_becomes_one_line_of_its_text()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(Bytes(100, 5))));
        const string page = """
            <!DOCTYPE html>
            <html>
            <head><title>500 Internal Server Error</title><style>h1 { color: red }</style></head>
            <body>
            <h1>Something went wrong</h1>
            <p>We&#39;re working on it.</p>
            </body></html>
            """;
        hub.Answer(r => r.Path.StartsWith("/api/models/", StringComparison.Ordinal), async (stream, stop) =>
        {
            var body = Encoding.UTF8.GetBytes(page);
            await FakeHub.WriteHeadAsync(stream, 500, [("Content-Type", "text/html; charset=utf-8")], body.Length);
            await stream.WriteAsync(body, stop);
        });

        var e = await Assert.ThrowsAsync<HttpRequestException>(() => ResolveAsync("org/tiny", Options()));

        Assert.Equal(7, page.Split('\n').Length);
        Assert.EndsWith(": 500 Internal Server Error Something went wrong We're working on it.", e.Message);
        Assert.Contains($"{hub.Endpoint}/api/models/org/tiny/revision/main", e.Message);
        AssertOneLine(e.Message);
    }

    [Fact]
    public async Task An_etag_too_long_for_a_file_name_is_refused_naming_the_file()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(Bytes(100, 6))));
        var etag = new string('e', 300);
        hub.Answer(r => r.Method == "HEAD" && r.Path.EndsWith("/config.json", StringComparison.Ordinal), (stream, _) =>
            FakeHub.WriteHeadAsync(stream, 200, [("X-Repo-Commit", CommitA), ("ETag", $"\"{etag}\"")], 10));

        var e = await Assert.ThrowsAnyAsync<IOException>(() => ResolveAsync("org/tiny", Options()));

        Assert.Contains("ETag of 300 characters", e.Message);
        Assert.Contains("config.json", e.Message);
        Assert.DoesNotContain(etag, e.Message);
        AssertOneLine(e.Message);
    }

    [Fact]
    public async Task A_ref_that_is_a_folder_is_refused_naming_it_before_any_request()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(Bytes(100, 7))));
        var refs = Path.Combine(RepoFolder("org/tiny"), "refs", "main");
        Directory.CreateDirectory(refs);

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ResolveAsync("org/tiny", Options()));

        Assert.StartsWith($"{refs}: a folder", e.Message);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public async Task A_snapshot_link_that_loops_is_downloaded_afresh_or_offline_named()
    {
        var weights = Bytes(100, 8);
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(weights)));
        var snapshot = Path.Combine(RepoFolder("org/tiny"), "snapshots", CommitA);
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(RepoFolder("org/tiny"), "refs"));
        await File.WriteAllTextAsync(Path.Combine(RepoFolder("org/tiny"), "refs", "main"), CommitA, TestContext.Current.CancellationToken);
        File.CreateSymbolicLink(Path.Combine(snapshot, "config.json"), "config.json");

        var offline = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => ResolveAsync("org/tiny", Options(offline: true)));
        Assert.Contains($"the cached snapshot {snapshot} lacks config.json", offline.Message);

        Assert.Equal(snapshot, await ResolveAsync("org/tiny", Options()));
        Assert.Equal("{\"model_type\": \"llama\"}", await File.ReadAllTextAsync(Path.Combine(snapshot, "config.json"), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_snapshot_folder_that_is_a_link_loop_is_refused_naming_it()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(Bytes(100, 9))));
        var snapshots = Path.Combine(RepoFolder("org/tiny"), "snapshots");
        Directory.CreateDirectory(snapshots);
        Directory.CreateDirectory(Path.Combine(RepoFolder("org/tiny"), "refs"));
        await File.WriteAllTextAsync(Path.Combine(RepoFolder("org/tiny"), "refs", "main"), CommitA, TestContext.Current.CancellationToken);
        Directory.CreateSymbolicLink(Path.Combine(snapshots, CommitA), CommitA);

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ResolveAsync("org/tiny", Options()));

        Assert.StartsWith($"{Path.Combine(snapshots, CommitA)}: a symbolic link", e.Message);
        Assert.Empty(hub.Requests);
    }
}
