using System.Text;
using System.Text.Json;
using ChainLora.Tests.Export;

namespace ChainLora.Tests.Cli;

/// <summary>
/// `--model org/name` from the command line, against FakeHub on 127.0.0.1: downloaded into the
/// cache named by HF_HUB_CACHE on first use, then used offline from there.
/// </summary>
public sealed class HubModelCliTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("chainlora-hubcli-").FullName;
    readonly Dictionary<string, string?> saved = [];

    void SetEnvironment(string name, string? value)
    {
        saved.TryAdd(name, Environment.GetEnvironmentVariable(name));
        Environment.SetEnvironmentVariable(name, value);
    }

    public void Dispose()
    {
        foreach (var (name, value) in saved) Environment.SetEnvironmentVariable(name, value);
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public void Perplexity_downloads_a_hub_model_once_then_runs_offline_from_the_cache()
    {
        var source = Fixtures.Reference("opt-preln");
        var tokenizer = Path.Combine(root, "tok");
        ExportKit.WriteTinyBpe(tokenizer);
        var files = new Dictionary<string, byte[]>
        {
            ["config.json"] = File.ReadAllBytes(Path.Combine(source, "config.json")),
            ["model.safetensors"] = File.ReadAllBytes(Path.Combine(source, "model.safetensors")),
            ["vocab.json"] = File.ReadAllBytes(Path.Combine(tokenizer, "vocab.json")),
            ["merges.txt"] = File.ReadAllBytes(Path.Combine(tokenizer, "merges.txt")),
            ["README.md"] = Encoding.UTF8.GetBytes("# not needed to load"),
        };
        var text = Path.Combine(root, "text.txt");
        File.WriteAllText(text, "abab ba abba b a ab");
        var cache = Path.Combine(root, "cache");
        SetEnvironment("HF_HUB_CACHE", cache);
        SetEnvironment("HF_HUB_OFFLINE", null);
        SetEnvironment("HF_TOKEN", null);

        double online;
        using (var hub = new FakeHub())
        {
            hub.Add(new FakeHub.Repo("tiny-org/opt-tiny", "0123456789abcdef0123456789abcdef01234567", files));
            SetEnvironment("HF_ENDPOINT", hub.Endpoint);
            var (exit, output, error) = CliHarness.Run("perplexity", "--model", "tiny-org/opt-tiny", "--text", text, "--json");
            Assert.True(exit == 0, error);
            online = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.GetProperty("nll_per_token").GetDouble();
            Assert.Contains(hub.Requests, r => r.Path.Contains("model.safetensors"));
            Assert.DoesNotContain(hub.Requests, r => r.Path.Contains("README.md"));
        }
        Assert.True(Directory.Exists(Path.Combine(cache, "models--tiny-org--opt-tiny", "snapshots")));

        SetEnvironment("HF_HUB_OFFLINE", "1");
        var offline = CliHarness.Run("perplexity", "--model", "tiny-org/opt-tiny", "--text", text, "--json");
        Assert.True(offline.Exit == 0, offline.Err);
        Assert.Equal(online, JsonDocument.Parse(offline.Out.Trim().Split('\n')[^1]).RootElement.GetProperty("nll_per_token").GetDouble());

        var missing = CliHarness.Run("perplexity", "--model", "tiny-org/not-there", "--text", text);
        Assert.Equal(2, missing.Exit);
        Assert.Contains("models--tiny-org--not-there", missing.Err);
    }
}
