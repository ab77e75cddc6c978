using System.Text;
using ChainLora.Cli;
using ChainLora.IO.Hub;

namespace ChainLora.Tests.IO;

/// <summary>
/// HubModelResolver against FakeHub (127.0.0.1 only) and against caches laid out by hand as
/// Python's huggingface_hub lays them out. Each test has its own temp cache and server.
/// </summary>
public sealed class HubTests : IDisposable
{
    const string CommitA = "0123456789abcdef0123456789abcdef01234567";
    const string CommitB = "89abcdef0123456789abcdef0123456789abcdef";

    readonly string cache = Path.Combine(Path.GetTempPath(), $"chainlora-hub-{Guid.NewGuid():N}");
    readonly FakeHub hub = new();

    public void Dispose()
    {
        hub.Dispose();
        if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true);
    }

    HubOptions Options(string? token = null, bool offline = false) =>
        new() { Endpoint = hub.Endpoint, CacheDir = cache, Token = token, Offline = offline };

    static string Resolve(string spec, HubOptions options, IProgress<HubFileProgress>? progress = null) =>
        HubModelResolver.Resolve(spec, options, progress, TestContext.Current.CancellationToken);

    static byte[] Bytes(int n, int seed)
    {
        var data = new byte[n];
        new Random(seed).NextBytes(data);
        return data;
    }

    static byte[] Text(string s) => Encoding.UTF8.GetBytes(s);

    static Dictionary<string, byte[]> SmallModel(params (string Name, byte[] Data)[] extra)
    {
        var files = new Dictionary<string, byte[]>
        {
            ["config.json"] = Text("{\"model_type\": \"llama\"}"),
            ["tokenizer.json"] = Text("{\"model\": {}}"),
        };
        foreach (var (name, data) in extra) files[name] = data;
        return files;
    }

    string RepoFolder(string repoId) => Path.Combine(cache, "models--" + repoId.Replace("/", "--"));

    /// <summary>Every file a snapshot holds, as '/'-separated paths.</summary>
    static string[] SnapshotFiles(string snapshot) =>
        [.. Directory.GetFiles(snapshot, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(snapshot, f).Replace('\\', '/')).Order(StringComparer.Ordinal)];

    /// <summary>The huggingface_hub layout: each snapshot file a relative symlink to ../../blobs/{etag} holding the right bytes.</summary>
    static void AssertLinkedToBlob(string snapshot, string file, byte[] data)
    {
        var path = Path.Combine(snapshot, file);
        var etag = FakeHub.IsLfs(file) ? FakeHub.Sha256(data) : FakeHub.GitSha1(data);
        var up = string.Concat(Enumerable.Repeat("../", 2 + file.Count(c => c == '/')));
        Assert.Equal($"{up}blobs/{etag}", new FileInfo(path).LinkTarget);
        Assert.Equal(data, File.ReadAllBytes(path));
    }

    [Fact]
    public void Hub_download_has_huggingface_hub_layout_and_prefers_safetensors()
    {
        var weights = Bytes(3000, 1);
        var files = SmallModel(("model.safetensors", weights), ("pytorch_model.bin", Bytes(2000, 2)),
            ("generation_config.json", Text("{}")), ("tokenizer_config.json", Text("{}")), ("special_tokens_map.json", Text("{}")),
            ("chat_template.jinja", Text("{{ messages }}")),
            ("README.md", Text("# card")), (".gitattributes", Text("*.bin lfs")), ("onnx/model.onnx", Bytes(100, 3)),
            ("tf_model.h5", Bytes(100, 4)));
        hub.Add(new FakeHub.Repo("org/both", CommitA, files));

        var snapshot = Resolve("org/both", Options());

        Assert.Equal(Path.Combine(RepoFolder("org/both"), "snapshots", CommitA), snapshot);
        Assert.Equal(["chat_template.jinja", "config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"],
            SnapshotFiles(snapshot));
        foreach (var file in SnapshotFiles(snapshot)) AssertLinkedToBlob(snapshot, file, files[file]);
        Assert.Equal(CommitA, File.ReadAllText(Path.Combine(RepoFolder("org/both"), "refs", "main")));
        // Three files hold "{}": one blob, as in Python's cache (config, tokenizer, weights, template, "{}").
        Assert.Equal(5, Directory.GetFiles(Path.Combine(RepoFolder("org/both"), "blobs")).Length);
        Assert.DoesNotContain(hub.Requests, r => r.Path.Contains("README") || r.Path.Contains("pytorch_model") || r.Path.Contains("onnx"));
    }

    [Fact]
    public void Hub_download_takes_bin_when_no_safetensors_and_every_shard_of_an_index()
    {
        var binFiles = SmallModel(("pytorch_model.bin", Bytes(1500, 5)), ("vocab.json", Text("{}")), ("merges.txt", Text("#v")));
        hub.Add(new FakeHub.Repo("org/bin-only", CommitA, binFiles));
        var shard1 = "model-00001-of-00002.safetensors";
        var shard2 = "model-00002-of-00002.safetensors";
        var index = $"{{\"metadata\": {{\"total_size\": 8}}, \"weight_map\": {{\"a\": \"{shard1}\", \"b\": \"{shard2}\", \"c\": \"{shard1}\"}}}}";
        var sharded = SmallModel(("model.safetensors.index.json", Text(index)), (shard1, Bytes(700, 6)), (shard2, Bytes(900, 7)),
            ("tokenizer.model", Bytes(50, 8)), ("pytorch_model.bin.index.json", Text("{\"weight_map\": {\"a\": \"pytorch_model-00001-of-00001.bin\"}}")),
            ("pytorch_model-00001-of-00001.bin", Bytes(300, 9)));
        hub.Add(new FakeHub.Repo("sharded", CommitB, sharded));

        var bin = Resolve("org/bin-only", Options());
        var shardedSnapshot = Resolve("sharded", Options());

        Assert.Equal(["config.json", "merges.txt", "pytorch_model.bin", "tokenizer.json", "vocab.json"], SnapshotFiles(bin));
        Assert.Equal(["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
            "tokenizer.json", "tokenizer.model"], SnapshotFiles(shardedSnapshot));
        foreach (var file in SnapshotFiles(shardedSnapshot)) AssertLinkedToBlob(shardedSnapshot, file, sharded[file]);
        Assert.Equal(Path.Combine(cache, "models--sharded", "snapshots", CommitB), shardedSnapshot);
    }

    [Fact]
    public void Hub_second_resolve_of_a_downloaded_model_makes_no_request()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(("model.safetensors", Bytes(500, 1)))));
        var first = Resolve("org/tiny", Options());
        var count = hub.Requests.Count;

        Assert.Equal(first, Resolve("org/tiny", Options()));
        Assert.Equal(first, Resolve("org/tiny", Options(offline: true)));
        Assert.Equal(first, HubModelResolver.FindCached("org/tiny", Options()));
        Assert.Equal(count, hub.Requests.Count);
    }

    [Fact]
    public void Hub_cache_laid_out_like_python_resolves_without_network()
    {
        // What huggingface_hub leaves after snapshot_download("org/llama") at main (CommitA) and at tag v1 (CommitB).
        var repo = RepoFolder("org/llama");
        WriteBlob(repo, "aaaa1111", "{\"model_type\": \"llama\"}");
        WriteBlob(repo, new string('b', 64), "weights");
        WriteBlob(repo, "cccc3333", "{\"model_type\": \"llama\", \"v\": 1}");
        Link(repo, CommitA, "config.json", "aaaa1111");
        Link(repo, CommitA, "model.safetensors", new string('b', 64));
        Link(repo, CommitB, "config.json", "cccc3333");
        Link(repo, CommitB, "model.safetensors", new string('b', 64));
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), CommitA);
        File.WriteAllText(Path.Combine(repo, "refs", "v1"), CommitB);
        var noNetwork = new HubOptions { Endpoint = "http://127.0.0.1:9", CacheDir = cache, Handler = new FailingHandler() };

        Assert.Equal(Path.Combine(repo, "snapshots", CommitA), Resolve("org/llama", noNetwork));
        Assert.Equal(Path.Combine(repo, "snapshots", CommitB), Resolve("org/llama@v1", noNetwork));
        Assert.Equal(Path.Combine(repo, "snapshots", CommitB), Resolve($"org/llama@{CommitB}", noNetwork with { Offline = true }));
        Assert.Equal("{\"model_type\": \"llama\", \"v\": 1}", File.ReadAllText(Path.Combine(repo, "snapshots", CommitB, "config.json")));

        // A snapshot whose weights link dangles (blob deleted) is not a cached model.
        File.Delete(Path.Combine(repo, "blobs", new string('b', 64)));
        Assert.Null(HubModelResolver.FindCached("org/llama", noNetwork));
        var e = Assert.Throws<DirectoryNotFoundException>(() => Resolve("org/llama", noNetwork with { Offline = true }));
        Assert.Contains("lacks weights", e.Message);
    }

    static void WriteBlob(string repo, string etag, string text)
    {
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        File.WriteAllText(Path.Combine(repo, "blobs", etag), text);
    }

    static void Link(string repo, string commit, string file, string etag)
    {
        var dir = Path.Combine(repo, "snapshots", commit);
        Directory.CreateDirectory(dir);
        File.CreateSymbolicLink(Path.Combine(dir, file), $"../../blobs/{etag}");
    }

    sealed class FailingHandler : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException($"no request expected, got {request.Method} {request.RequestUri}");
    }

    [Fact]
    public void Hub_options_read_the_environment_with_huggingface_hub_precedence()
    {
        HubOptions From(params (string Key, string Value)[] vars)
        {
            var env = vars.ToDictionary(v => v.Key, v => v.Value);
            return HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        }

        var home = Path.Combine(cache, "home");
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), From(("HOME", home)).CacheDir);
        Assert.Equal(Path.Combine("/xdg", "huggingface", "hub"), From(("HOME", home), ("XDG_CACHE_HOME", "/xdg")).CacheDir);
        Assert.Equal(Path.Combine("/hf", "hub"), From(("HOME", home), ("HF_HOME", "/hf")).CacheDir);
        Assert.Equal("/legacy", From(("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy")).CacheDir);
        Assert.Equal("/c", From(("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/legacy"), ("HF_HUB_CACHE", "/c")).CacheDir);
        Assert.Equal(Path.Combine(home, "c"), From(("HOME", home), ("HF_HUB_CACHE", "~/c")).CacheDir);
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), From(("HOME", home), ("HF_HUB_CACHE", "")).CacheDir);

        Assert.Equal(HubOptions.DefaultEndpoint, From(("HOME", home)).Endpoint);
        Assert.Equal("http://mirror", From(("HOME", home), ("HF_ENDPOINT", "http://mirror/")).Endpoint);

        Assert.True(From(("HOME", home), ("HF_HUB_OFFLINE", "1")).Offline);
        Assert.True(From(("HOME", home), ("HF_HUB_OFFLINE", "Yes")).Offline);
        Assert.True(From(("HOME", home), ("TRANSFORMERS_OFFLINE", "on")).Offline);
        Assert.False(From(("HOME", home), ("HF_HUB_OFFLINE", "0"), ("TRANSFORMERS_OFFLINE", "1")).Offline);
        Assert.False(From(("HOME", home)).Offline);

        Assert.Null(From(("HOME", home)).Token);
        Directory.CreateDirectory(Path.Combine(home, ".cache", "huggingface"));
        File.WriteAllText(Path.Combine(home, ".cache", "huggingface", "token"), "hf_from_file\n");
        Assert.Equal("hf_from_file", From(("HOME", home)).Token);
        File.WriteAllText(Path.Combine(cache, "other-token"), " hf_other ");
        Assert.Equal("hf_other", From(("HOME", home), ("HF_TOKEN_PATH", Path.Combine(cache, "other-token"))).Token);
        Assert.Equal("hf_env", From(("HOME", home), ("HF_TOKEN", "hf_env")).Token);
        Assert.DoesNotContain("hf_env", From(("HOME", home), ("HF_TOKEN", "hf_env")).ToString());
        Assert.Equal("hf_legacy", From(("HOME", home), ("HUGGING_FACE_HUB_TOKEN", "hf_legacy")).Token);
    }

    [Theory]
    [InlineData("gpt2", "gpt2", "main")]
    [InlineData("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf", "main")]
    [InlineData("facebook/opt-125m@v1.0", "facebook/opt-125m", "v1.0")]
    [InlineData("org/name@refs/pr/1", "org/name", "refs/pr/1")]
    [InlineData("Org_1/a.b-c@" + CommitA, "Org_1/a.b-c", CommitA)]
    public void Hub_spec_parses_repo_and_revision(string spec, string repo, string revision)
    {
        Assert.True(HubModelResolver.LooksLikeRepoId(spec));
        Assert.Equal(new HubModelSpec(repo, revision), HubModelSpec.Parse(spec));
    }

    [Theory]
    [InlineData("/abs/path")]
    [InlineData("./model")]
    [InlineData("../model")]
    [InlineData("a/b/c")]
    [InlineData("org--x/name")]
    [InlineData("org/na..me")]
    [InlineData("-org/name")]
    [InlineData("org/name.")]
    [InlineData("org/name.git")]
    [InlineData("org/na me")]
    [InlineData("~/models/x")]
    public void Hub_spec_rejects_what_huggingface_hub_rejects(string spec)
    {
        Assert.False(HubModelResolver.LooksLikeRepoId(spec));
        var e = Assert.Throws<ArgumentException>(() => HubModelSpec.Parse(spec));
        Assert.Contains($"'{spec}'", e.Message);
    }

    /// <summary>A valid repo id with a bad revision is meant as a Hub id: Parse names the revision's fault, no folder is looked for.</summary>
    [Theory]
    [InlineData("org/name@", "empty revision after '@'")]
    [InlineData("org/name@../x", "revision '../x' is not a valid branch, tag or commit name")]
    public void Hub_spec_with_a_bad_revision_is_a_hub_id_refused_for_its_revision(string spec, string problem)
    {
        Assert.True(HubModelResolver.LooksLikeRepoId(spec));
        var e = Assert.Throws<ArgumentException>(() => HubModelSpec.Parse(spec));
        Assert.StartsWith($"model '{spec}': {problem}", e.Message);
    }

    [Fact]
    public void Hub_interrupted_download_resumes_with_a_range_request()
    {
        var weights = Bytes(40_000, 11);
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(("model.safetensors", weights))));
        hub.DropOnce("model.safetensors", 10_000);
        var blob = Path.Combine(RepoFolder("org/tiny"), "blobs", FakeHub.Sha256(weights));

        var broken = Assert.Throws<PartialDownloadException>(() => Resolve("org/tiny", Options()));
        Assert.Contains("model.safetensors", broken.Message);
        var have = new FileInfo(blob + ".incomplete").Length;
        Assert.InRange(have, 1, weights.Length - 1);
        Assert.False(File.Exists(blob));

        var snapshot = Resolve("org/tiny", Options());

        Assert.Contains(hub.Requests, r => r.Cdn && r.Header("Range") == $"bytes={have}-");
        Assert.Equal(FakeHub.Sha256(weights), FakeHub.Sha256(File.ReadAllBytes(Path.Combine(snapshot, "model.safetensors"))));
        Assert.False(File.Exists(blob + ".incomplete"));
    }

    [Fact]
    public void Hub_resume_against_a_server_that_ignores_range_starts_over()
    {
        var weights = Bytes(30_000, 20);
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(("model.safetensors", weights))));
        hub.DropOnce("model.safetensors", 5_000);
        Assert.Throws<PartialDownloadException>(() => Resolve("org/tiny", Options()));
        hub.IgnoreRange = true;

        var snapshot = Resolve("org/tiny", Options());

        Assert.Contains(hub.Requests, r => r.Cdn && r.Header("Range") is not null);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(snapshot, "model.safetensors")));
    }

    [Fact]
    public void Hub_corrupt_lfs_download_names_file_and_hashes_and_leaves_nothing()
    {
        var weights = Bytes(5000, 12);
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(("model.safetensors", weights))));
        hub.Corrupt("model.safetensors");
        var sha = FakeHub.Sha256(weights);
        var sent = FakeHub.Sha256([.. weights.Select(b => (byte)(b ^ 0x5A))]);

        var e = Assert.Throws<InvalidDataException>(() => Resolve("org/tiny", Options()));

        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains(sha, e.Message);
        Assert.Contains(sent, e.Message);
        var blobs = Path.Combine(RepoFolder("org/tiny"), "blobs");
        Assert.False(File.Exists(Path.Combine(blobs, sha)));
        Assert.False(File.Exists(Path.Combine(blobs, sha + ".incomplete")));
        Assert.False(File.Exists(Path.Combine(RepoFolder("org/tiny"), "snapshots", CommitA, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(RepoFolder("org/tiny"), "refs", "main")));
        Assert.Null(HubModelResolver.FindCached("org/tiny", Options()));
    }

    [Fact]
    public void Hub_gated_repo_needs_the_token_which_never_goes_to_the_cdn()
    {
        hub.Add(new FakeHub.Repo("org/gated", CommitA, SmallModel(("model.safetensors", Bytes(800, 13))), Gated: true));

        var e = Assert.Throws<UnauthorizedAccessException>(() => Resolve("org/gated", Options()));
        Assert.Contains("org/gated", e.Message);
        Assert.Contains("gated or private", e.Message);
        Assert.Contains("HF_TOKEN", e.Message);
        Assert.Contains("no token was sent", e.Message);
        var wrong = Assert.Throws<UnauthorizedAccessException>(() => Resolve("org/gated", Options(token: "hf_wrong")));
        Assert.Contains("the token sent does not grant access", wrong.Message);

        var snapshot = Resolve("org/gated", Options(token: FakeHub.Token));

        Assert.True(File.Exists(Path.Combine(snapshot, "model.safetensors")));
        Assert.Contains(hub.Requests, r => !r.Cdn && r.Header("Authorization") == $"Bearer {FakeHub.Token}");
        Assert.Contains(hub.Requests, r => r.Cdn);
        Assert.All(hub.Requests.Where(r => r.Cdn), r => Assert.Null(r.Header("Authorization")));
    }

    [Fact]
    public void Hub_unknown_repo_revision_or_shard_is_a_clear_not_found()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(("model.safetensors", Bytes(100, 14)))));
        var index = "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\"}}";
        hub.Add(new FakeHub.Repo("org/lost-shard", CommitA, SmallModel(("model.safetensors.index.json", Text(index)))));

        var repo = Assert.Throws<FileNotFoundException>(() => Resolve("org/nope", Options()));
        Assert.Contains("org/nope", repo.Message);
        Assert.Contains("repository not found", repo.Message);
        var revision = Assert.Throws<FileNotFoundException>(() => Resolve("org/tiny@v9", Options()));
        Assert.Contains("revision 'v9' not found", revision.Message);
        var shard = Assert.Throws<FileNotFoundException>(() => Resolve("org/lost-shard", Options()));
        Assert.Contains("model-00001-of-00002.safetensors", shard.Message);
        hub.Add(new FakeHub.Repo("org/no-weights", CommitA, SmallModel()));
        var weights = Assert.Throws<FileNotFoundException>(() => Resolve("org/no-weights", Options()));
        Assert.Contains("no weights", weights.Message);
    }

    [Fact]
    public void Hub_offline_without_the_model_names_the_cache_and_makes_no_request()
    {
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(("model.safetensors", Bytes(100, 15)))));

        var e = Assert.Throws<DirectoryNotFoundException>(() => Resolve("org/tiny@v2", Options(offline: true)));

        Assert.Contains(RepoFolder("org/tiny"), e.Message);
        Assert.Contains("'v2'", e.Message);
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public void Hub_revision_branch_and_commit_forms_download_and_record_refs()
    {
        var files = SmallModel(("model.safetensors", Bytes(300, 16)));
        var repo = new FakeHub.Repo("org/tiny", CommitA, files);
        repo.Refs["v1"] = CommitA;
        hub.Add(repo);

        var byTag = Resolve("org/tiny@v1", Options());
        var blobs = Directory.GetFiles(Path.Combine(RepoFolder("org/tiny"), "blobs")).Length;
        var byCommit = Resolve($"org/tiny@{CommitA}", Options());

        Assert.Equal(byTag, byCommit);
        Assert.Equal(CommitA, File.ReadAllText(Path.Combine(RepoFolder("org/tiny"), "refs", "v1")));
        Assert.False(File.Exists(Path.Combine(RepoFolder("org/tiny"), "refs", CommitA)));
        Assert.Equal(blobs, Directory.GetFiles(Path.Combine(RepoFolder("org/tiny"), "blobs")).Length);
    }

    [Fact]
    public void Hub_renamed_repo_follows_relative_redirects_keeping_the_token()
    {
        hub.Add(new FakeHub.Repo("new-org/tiny", CommitA, SmallModel(("model.safetensors", Bytes(300, 17))), Gated: true));
        hub.Rename("old-org/tiny", "new-org/tiny");

        var snapshot = Resolve("old-org/tiny", Options(token: FakeHub.Token));

        Assert.Equal(Path.Combine(RepoFolder("old-org/tiny"), "snapshots", CommitA), snapshot);
        Assert.Contains(hub.Requests, r => r.Method == "HEAD" && r.Path.StartsWith("/new-org/tiny/resolve/", StringComparison.Ordinal)
            && r.Header("Authorization") == $"Bearer {FakeHub.Token}");
    }

    [Fact]
    public void Hub_progress_reports_each_downloaded_file_and_the_cli_prints_a_line_per_file()
    {
        var weights = Bytes(3 << 20, 18);
        hub.Add(new FakeHub.Repo("org/tiny", CommitA, SmallModel(("model.safetensors", weights))));
        var reports = new List<HubFileProgress>();

        Resolve("org/tiny", Options(), new Collect(reports));

        var model = reports.Where(r => r.File == "model.safetensors").ToList();
        Assert.Equal(0, model[0].BytesDone);
        Assert.True(model.Count >= 3, $"{model.Count} reports for 3 MiB");
        Assert.All(model, r => Assert.Equal(weights.Length, r.TotalBytes));
        Assert.Equal(weights.Length, model[^1].BytesDone);
        Assert.Equal(["config.json", "model.safetensors", "tokenizer.json"], reports.Select(r => r.File).Distinct().Order(StringComparer.Ordinal));

        hub.Add(new FakeHub.Repo("org/other", CommitB, SmallModel(("model.safetensors", Bytes(10, 19)))));
        var log = new StringWriter();
        var dir = DownloadProgress.ResolveModel("org/other", Options(), log, TestContext.Current.CancellationToken);
        Assert.Equal(Path.Combine(RepoFolder("org/other"), "snapshots", CommitB), dir);
        Assert.Contains("downloaded model.safetensors (10 bytes)", log.ToString());
        Assert.Equal(cache, DownloadProgress.ResolveModel(cache, Options(), log, TestContext.Current.CancellationToken));
    }

    sealed class Collect(List<HubFileProgress> into) : IProgress<HubFileProgress>
    {
        public void Report(HubFileProgress value) => into.Add(value);
    }
}
