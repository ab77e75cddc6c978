// An imitation of the Hugging Face Hub on 127.0.0.1 (two free ports: the Hub and its "CDN"), with
// just the HTTP the Hub serves to huggingface_hub: GET api/models/{repo}/revision/{rev},
// HEAD/GET {repo}/resolve/{rev}/{file} (LFS files answer 302 to the CDN with X-Linked-Etag and
// X-Linked-Size), Range requests (206), gated repos (401 without the token), 404s with X-Error-Code,
// and a renamed repo answering relative redirects. A minimal HTTP/1.1 over TcpListener: one request
// per connection, so a test can also break a body off mid-way, stall it, or answer anything at all.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ChainLora.Tests;

sealed class FakeHub : IDisposable
{
    public const string Token = "hf_fake_token_123";

    public sealed record Repo(string Id, string Commit, IReadOnlyDictionary<string, byte[]> Files, bool Gated = false)
    {
        /// <summary>Other revisions (branches, tags) and the commit each points at; "main" is <see cref="Commit"/>.</summary>
        public Dictionary<string, string> Refs { get; } = new() { ["main"] = Commit };
    }

    /// <summary>One request as the server saw it; <see cref="Cdn"/> when it came to the CDN port.</summary>
    public sealed record Request(string Method, string Path, bool Cdn, IReadOnlyDictionary<string, string> Headers)
    {
        public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;
    }

    readonly TcpListener hub = new(IPAddress.Loopback, 0);
    readonly TcpListener cdn = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource stop = new();
    readonly Dictionary<string, Repo> repos = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> renamed = new(StringComparer.Ordinal);
    readonly ConcurrentQueue<Request> requests = new();
    readonly ConcurrentDictionary<string, int> dropAfter = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, bool> corrupt = new(StringComparer.Ordinal);
    readonly ConcurrentDictionary<string, int> stallAfter = new(StringComparer.Ordinal);
    readonly TaskCompletionSource stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly ConcurrentQueue<(Func<Request, bool> When, Func<Stream, CancellationToken, Task> Respond)> answers = new();

    public FakeHub()
    {
        hub.Start();
        cdn.Start();
        _ = AcceptAsync(hub, isCdn: false);
        _ = AcceptAsync(cdn, isCdn: true);
    }

    public string Endpoint => $"http://127.0.0.1:{((IPEndPoint)hub.LocalEndpoint).Port}";
    string CdnRoot => $"http://127.0.0.1:{((IPEndPoint)cdn.LocalEndpoint).Port}";

    public IReadOnlyList<Request> Requests => [.. requests];

    public void Add(Repo repo) => repos[repo.Id] = repo;

    /// <summary>Requests for <paramref name="oldId"/> answer 307 with a relative Location naming <paramref name="newId"/>, as the Hub does after a rename.</summary>
    public void Rename(string oldId, string newId) => renamed[oldId] = newId;

    /// <summary>The next GET of <paramref name="file"/>'s bytes sends <paramref name="bytes"/> of the body, then closes the connection.</summary>
    public void DropOnce(string file, int bytes) => dropAfter[file] = bytes;

    /// <summary>Every GET of <paramref name="file"/> sends bytes other than the ones its sha256 etag names.</summary>
    public void Corrupt(string file) => corrupt[file] = true;

    /// <summary>
    /// The next GET of <paramref name="file"/>'s bytes sends the headers and <paramref name="bytes"/>
    /// of the body, then nothing, holding the connection open until the client leaves or the hub is disposed.
    /// </summary>
    public void StallOnce(string file, int bytes) => stallAfter[file] = bytes;

    /// <summary>Completes once a stalled body has sent its bytes and gone silent.</summary>
    public Task Stalled => stalled.Task;

    /// <summary>
    /// Requests that <paramref name="when"/> picks (on either port) are answered by <paramref name="respond"/>,
    /// which writes the raw response (see <see cref="WriteHeadAsync"/>); the token is cancelled when the hub is disposed.
    /// </summary>
    public void Answer(Func<Request, bool> when, Func<Stream, CancellationToken, Task> respond) => answers.Enqueue((when, respond));

    /// <summary>When set, the CDN answers a Range request with 200 and the whole file, as some servers do.</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>Weights are LFS files on the Hub: named by sha256, served from the CDN.</summary>
    public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal) || file.EndsWith(".bin", StringComparison.Ordinal);

    public static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>A git blob's sha1, the ETag the Hub gives a regular (non-LFS) file.</summary>
    public static string GitSha1(byte[] data) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {data.Length}\0"), .. data]));

    async Task AcceptAsync(TcpListener listener, bool isCdn)
    {
        try
        {
            while (true)
            {
                var client = await listener.AcceptTcpClientAsync(stop.Token);
                _ = Task.Run(() => ServeAsync(client, isCdn));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Disposed: the test is over.
        }
    }

    async Task ServeAsync(TcpClient client, bool isCdn)
    {
        using (client)
        {
            var stream = client.GetStream();
            var reader = new StreamReader(stream, Encoding.ASCII);
            var line = await reader.ReadLineAsync();
            if (line is null) return;
            var parts = line.Split(' ');
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            while (await reader.ReadLineAsync() is { Length: > 0 } header)
            {
                var colon = header.IndexOf(':');
                headers[header[..colon].Trim()] = header[(colon + 1)..].Trim();
            }
            var request = new Request(parts[0], Uri.UnescapeDataString(parts[1]), isCdn, headers);
            requests.Enqueue(request);
            try
            {
                var answer = answers.FirstOrDefault(a => a.When(request));
                await (answer.Respond is { } respond ? respond(stream, stop.Token)
                    : isCdn ? ServeCdnAsync(stream, request) : ServeHubAsync(stream, request));
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // The client went away (a HEAD it did not read, a cancelled download), or the test is over.
            }
        }
    }

    async Task ServeHubAsync(NetworkStream stream, Request r)
    {
        const string api = "/api/models/";
        var path = r.Path;
        var apiCall = path.StartsWith(api, StringComparison.Ordinal);
        var rest = apiCall ? path[api.Length..] : path[1..];
        var marker = apiCall ? "/revision/" : "/resolve/";
        var at = rest.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            await RespondAsync(stream, r, 404, []);
            return;
        }
        var repoId = rest[..at];
        if (renamed.TryGetValue(repoId, out var newId))
        {
            var location = (apiCall ? api : "/") + newId + rest[at..];
            await RespondAsync(stream, r, 307, [("Location", location)]);
            return;
        }
        var after = rest[(at + marker.Length)..];
        var slash = after.IndexOf('/');
        var revision = apiCall ? after : after[..slash];
        if (!repos.TryGetValue(repoId, out var repo))
        {
            await ErrorAsync(stream, r, 404, "RepoNotFound", "Repository not found");
            return;
        }
        if (repo.Gated && r.Header("Authorization") != $"Bearer {Token}")
        {
            await ErrorAsync(stream, r, 401, null, $"Access to model {repoId} is restricted. You must be authenticated to access it.");
            return;
        }
        var commit = revision == repo.Commit ? repo.Commit : repo.Refs.GetValueOrDefault(revision);
        if (commit is null)
        {
            await ErrorAsync(stream, r, 404, "RevisionNotFound", $"Invalid rev id: {revision}");
            return;
        }
        if (apiCall)
        {
            var json = JsonSerializer.Serialize(new
            {
                id = repoId,
                sha = commit,
                siblings = repo.Files.Keys.Select(f => new { rfilename = f }),
            });
            await RespondAsync(stream, r, 200, [("Content-Type", "application/json")], Encoding.UTF8.GetBytes(json));
            return;
        }
        var file = after[(slash + 1)..];
        if (!repo.Files.TryGetValue(file, out var data))
        {
            await ErrorAsync(stream, r, 404, "EntryNotFound", $"{file} does not exist");
            return;
        }
        if (IsLfs(file))
        {
            var sha = Sha256(data);
            // Content-Length is the redirect body's; the file's size is in X-Linked-Size.
            await RespondAsync(stream, r, 302,
            [
                ("Location", $"{CdnRoot}/cdn/{sha}?file={Uri.EscapeDataString(file)}&repo={Uri.EscapeDataString(repoId)}"),
                ("X-Repo-Commit", commit), ("X-Linked-Etag", $"\"{sha}\""), ("X-Linked-Size", data.Length.ToString()),
                ("ETag", $"\"{sha}\""),
            ], Encoding.ASCII.GetBytes("Found. Redirecting to the CDN"));
            return;
        }
        // Small text files: weak etag on JSON, as a compressing proxy would send, to exercise the W/ strip.
        var etag = file.EndsWith(".json", StringComparison.Ordinal) ? $"W/\"{GitSha1(data)}\"" : $"\"{GitSha1(data)}\"";
        await RespondAsync(stream, r, 200, [("X-Repo-Commit", commit), ("ETag", etag)], data);
    }

    /// <summary>/cdn/{sha} redirects (relative Location) to /blob/{sha}, which serves the bytes with Range support.</summary>
    async Task ServeCdnAsync(NetworkStream stream, Request r)
    {
        var query = r.Path.Contains('?') ? r.Path[(r.Path.IndexOf('?') + 1)..] : "";
        var path = r.Path.Split('?')[0];
        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            await RespondAsync(stream, r, 302, [("Location", $"/blob/{path["/cdn/".Length..]}?{query}")]);
            return;
        }
        var args = query.Split('&').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => Uri.UnescapeDataString(p[1]));
        var file = args["file"];
        var data = repos[args["repo"]].Files[file];
        if (corrupt.ContainsKey(file)) data = [.. data.Select(b => (byte)(b ^ 0x5A))];
        var from = !IgnoreRange && r.Header("Range") is { } range ? long.Parse(range["bytes=".Length..].TrimEnd('-')) : 0;
        if (from >= data.Length && from > 0)
        {
            await RespondAsync(stream, r, 416, [("Content-Range", $"bytes */{data.Length}")]);
            return;
        }
        var body = data[(int)from..];
        var status = from > 0 ? 206 : 200;
        List<(string, string)> headers = from > 0 ? [("Content-Range", $"bytes {from}-{data.Length - 1}/{data.Length}")] : [];
        if (dropAfter.TryRemove(file, out var cut))
        {
            await WriteHeadAsync(stream, status, headers, body.Length);
            await stream.WriteAsync(body.AsMemory(0, Math.Min(cut, body.Length)));
            await stream.FlushAsync();
            return;
        }
        if (stallAfter.TryRemove(file, out var sent))
        {
            await WriteHeadAsync(stream, status, headers, body.Length);
            await stream.WriteAsync(body.AsMemory(0, Math.Min(sent, body.Length)));
            await stream.FlushAsync();
            stalled.TrySetResult();
            // Silent until the client gives up (a read of 0 bytes: it closed) or the test ends.
            _ = await stream.ReadAsync(new byte[1], stop.Token);
            return;
        }
        await RespondAsync(stream, r, status, headers, body);
    }

    static Task ErrorAsync(NetworkStream stream, Request r, int status, string? code, string message)
    {
        List<(string, string)> headers = [("Content-Type", "application/json")];
        if (code is not null) headers.Add(("X-Error-Code", code));
        return RespondAsync(stream, r, status, headers, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { error = message })));
    }

    static async Task RespondAsync(NetworkStream stream, Request r, int status, List<(string, string)> headers, byte[]? body = null)
    {
        body ??= [];
        await WriteHeadAsync(stream, status, headers, body.Length);
        if (r.Method != "HEAD") await stream.WriteAsync(body);
        await stream.FlushAsync();
    }

    /// <summary>A response's status line and headers, with Content-Length <paramref name="length"/> (true or not) and Connection: close.</summary>
    public static async Task WriteHeadAsync(Stream stream, int status, IReadOnlyList<(string Name, string Value)> headers, long length)
    {
        var head = new StringBuilder($"HTTP/1.1 {status} {(HttpStatusCode)status}\r\n");
        foreach (var (name, value) in headers) head.Append($"{name}: {value}\r\n");
        head.Append($"Content-Length: {length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()));
    }

    public void Dispose()
    {
        stop.Cancel();
        hub.Stop();
        cdn.Stop();
        stop.Dispose();
    }
}
