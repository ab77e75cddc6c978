// The Hub's HTTP API as huggingface_hub calls it: hf_api.model_info (GET api/models/{repo}/revision/{rev}),
// file_download.get_hf_file_metadata (HEAD resolve/{commit}/{file}, following relative redirects only,
// so an LFS file's 302 to the CDN is read, not followed), and utils/_http.py hf_raise_for_status
// (X-Error-Code names the failure). Redirects are followed here, not by the handler, so that the
// Authorization header is dropped when a redirect leaves the Hub's host, as requests does. Every
// wait has an end (HubOptions.DownloadTimeout, as huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT) and
// no body is read whole on trust: an error page is read up to 64 KiB, whatever it or its
// Content-Length says.
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ChainLora.IO.Hub;

/// <summary>
/// What HEAD resolve/{commit}/{file} says about one file: the blob name (<see cref="Etag"/>, the
/// sha256 for LFS files), its size (-1 when the server did not say), and where to GET it.
/// </summary>
public sealed record HubFileMetadata(string Filename, string Commit, string Etag, long Size, Uri Location)
{
    /// <summary>LFS files are named by their sha256, which the download is checked against.</summary>
    public bool IsLfs => Etag.Length == 64 && Etag.All(char.IsAsciiHexDigitLower);
}

sealed partial class HubClient(HubOptions options) : IDisposable
{
    const int MaxRedirects = 10;
    // The part of an error body kept for its message: enough for any JSON error or HTML page's gist.
    const int MaxErrorBodyBytes = 64 << 10;
    // Model info lists every file of the repository; the largest repositories' run to a few MB.
    const int MaxModelInfoBytes = 64 << 20;
    // The blob is named by the ETag, and ".incomplete" or ".lock" is added to it: a file name holds at most 255 bytes.
    const int MaxEtagBytes = 255 - 11;

    readonly HttpClient http = new(
        options.Handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(10) },
        disposeHandler: options.Handler is null)
    {
        // Each wait is timed on its own (DownloadTimeout); HttpClient's one 100 s limit would cut a
        // longer HF_HUB_DOWNLOAD_TIMEOUT short.
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public string Endpoint { get; } = HubOptions.CheckEndpoint(options.Endpoint, nameof(HubOptions.Endpoint));

    /// <summary>"10 s (HF_HUB_DOWNLOAD_TIMEOUT)": how long one read waits, and what changes it.</summary>
    string TimeoutText => $"{options.DownloadTimeout.TotalSeconds:0.###} s (HF_HUB_DOWNLOAD_TIMEOUT)";

    /// <summary>The commit <paramref name="spec"/>'s revision points at and every file path in it.</summary>
    public async Task<(string Commit, IReadOnlyCollection<string> Files)> ModelInfoAsync(HubModelSpec spec, CancellationToken cancel)
    {
        var url = new Uri($"{Endpoint}/api/models/{spec.RepoId}/revision/{Uri.EscapeDataString(spec.Revision)}");
        using var response = await SendAsync(HttpMethod.Get, url, followAbsolute: true, sendToken: true, rangeFrom: 0, cancel);
        await ThrowIfFailedAsync(response, url, spec, filename: null, cancel);
        var body = new MemoryStream();
        if (!await ReadStartAsync(response, url, body, MaxModelInfoBytes, cancel))
            throw new HubResponseException($"GET {url}: the model info is larger than {MaxModelInfoBytes >> 20} MiB; is {Endpoint} a Hugging Face Hub?");
        try
        {
            using var doc = JsonDocument.Parse(body.ToArray());
            var root = doc.RootElement;
            var commit = root.GetProperty("sha").GetString() ?? "";
            if (!HubModelSpec.IsCommitHash(commit)) throw new HubResponseException($"GET {url}: field 'sha' is '{Abbreviate(commit)}', expected a 40-hex commit hash");
            var files = root.GetProperty("siblings").EnumerateArray().Select(s => s.GetProperty("rfilename").GetString()!).ToHashSet(StringComparer.Ordinal);
            return (commit, files);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new HubResponseException($"GET {url}: not the Hub's model info JSON ({OneLine(e.Message)})", e);
        }
    }

    /// <summary>HEAD resolve/{commit}/{file}: the blob name, size and download location; errors name the file.</summary>
    public async Task<HubFileMetadata> FileMetadataAsync(HubModelSpec spec, string commit, string filename, CancellationToken cancel)
    {
        var url = ResolveUrl(spec, commit, filename);
        using var response = await SendAsync(HttpMethod.Head, url, followAbsolute: false, sendToken: true, rangeFrom: 0, cancel);
        if ((int)response.StatusCode is < 300 or > 399) await ThrowIfFailedAsync(response, url, spec, filename, cancel);
        var repoCommit = Header(response, "X-Repo-Commit")
            ?? throw new HubResponseException($"HEAD {url}: no X-Repo-Commit header; is {Endpoint} a Hugging Face Hub (a proxy or firewall may be answering)?");
        var etag = Header(response, "X-Linked-Etag") ?? Header(response, "ETag")
            ?? throw new HubResponseException($"HEAD {url}: no ETag header, so {filename} cannot be named in the cache");
        var size = long.TryParse(Header(response, "X-Linked-Size"), out var linked) ? linked : response.Content.Headers.ContentLength ?? -1;
        var location = Header(response, "Location") is { } loc ? Redirect(url, loc) : url;
        etag = NormalizeEtag(etag);
        // The etag becomes a file name under blobs/: one that is no plain name would write elsewhere,
        // and one too long for a file name fails deep in the file system.
        if (etag.Length == 0 || etag is "." or ".." || etag.Any(c => c is '/' or '\\' || char.IsControl(c)))
            throw new HubResponseException($"HEAD {url}: ETag '{Abbreviate(etag)}' cannot name the blob file of {filename}");
        if (Encoding.UTF8.GetByteCount(etag) > MaxEtagBytes)
            throw new HubResponseException($"HEAD {url}: ETag of {etag.Length} characters ('{Abbreviate(etag)}') is too long to name the blob file " +
                $"of {filename} (at most {MaxEtagBytes} bytes; the Hub's are 40 or 64)");
        return new HubFileMetadata(filename, repoCommit, etag, size, location);
    }

    /// <summary>
    /// GET of a file's bytes from <paramref name="rangeFrom"/> on, following every redirect. The
    /// token goes only to the Hub's own host: a CDN location is already signed.
    /// </summary>
    public async Task<HttpResponseMessage> DownloadAsync(HubModelSpec spec, HubFileMetadata file, long rangeFrom, CancellationToken cancel)
    {
        var sameHost = file.Location.Authority == new Uri(Endpoint).Authority;
        var response = await SendAsync(HttpMethod.Get, file.Location, followAbsolute: true, sendToken: sameHost, rangeFrom, cancel);
        // 416 answers a range past the end: the caller restarts from byte 0.
        if (response.StatusCode is HttpStatusCode.RequestedRangeNotSatisfiable && rangeFrom > 0) return response;
        try
        {
            await ThrowIfFailedAsync(response, file.Location, spec, file.Filename, cancel);
        }
        catch
        {
            response.Dispose();
            throw;
        }
        return response;
    }

    Uri ResolveUrl(HubModelSpec spec, string commit, string filename) =>
        new($"{Endpoint}/{spec.RepoId}/resolve/{commit}/{string.Join('/', filename.Split('/').Select(Uri.EscapeDataString))}");

    async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, bool followAbsolute, bool sendToken, long rangeFrom, CancellationToken cancel)
    {
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, url);
            if (sendToken && options.Token is { } token) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            request.Headers.UserAgent.ParseAdd("chainlora/1.0");
            // The size in Content-Length must be the stored size, not a compressed one.
            request.Headers.AcceptEncoding.ParseAdd("identity");
            if (rangeFrom > 0) request.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            HttpResponseMessage response;
            using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timer.CancelAfter(options.DownloadTimeout);
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timer.Token);
            }
            catch (OperationCanceledException e) when (cancel.IsCancellationRequested)
            {
                throw new OperationCanceledException($"{method} {url}: stopped while waiting for the answer", e, cancel);
            }
            catch (OperationCanceledException e) when (timer.IsCancellationRequested)
            {
                throw new TimeoutException($"{method} {url}: no answer within {TimeoutText}; the server or the network is stalled", e);
            }
            // SocketsHttpHandler's ConnectTimeout ends in a TaskCanceledException.
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                throw new HttpRequestException($"cannot reach {url.GetLeftPart(UriPartial.Authority)} ({method} {url}: {e.Message}); " +
                    "check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache", e);
            }
            if ((int)response.StatusCode is < 300 or > 399 || Header(response, "Location") is not { } location) return response;
            if (!followAbsolute && IsAbsolute(location)) return response;
            var next = Redirect(url, location);
            response.Dispose();
            if (hop == MaxRedirects) throw new HttpRequestException($"{method} {url}: more than {MaxRedirects} redirects");
            // huggingface_hub drops the token for another host; also for another scheme, so an https
            // to http redirect on the same host never carries it in clear text.
            if (next.Authority != url.Authority || next.Scheme != url.Scheme) sendToken = false;
            url = next;
        }
    }

    /// <summary>
    /// A Location header resolved against the request URL. Parsed by hand: on Unix, .NET reads a
    /// relative "/path" as an absolute file URI.
    /// </summary>
    static Uri Redirect(Uri from, string location)
    {
        if (location.StartsWith("//", StringComparison.Ordinal)) return new Uri(from.Scheme + ":" + location);
        if (IsAbsolute(location)) return new Uri(location);
        return location.StartsWith('/') ? new Uri(from.GetLeftPart(UriPartial.Authority) + location) : new Uri(from, location);
    }

    /// <summary>A Location with its own host ("https://cdn/...", "//cdn/..."), which HEAD does not follow.</summary>
    static bool IsAbsolute(string location) =>
        location.StartsWith("//", StringComparison.Ordinal)
        || (Uri.TryCreate(location, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https");

    /// <summary>hf_raise_for_status: one exception per failure, naming the repo, revision or file and whether a token was sent.</summary>
    async Task ThrowIfFailedAsync(HttpResponseMessage response, Uri url, HubModelSpec spec, string? filename, CancellationToken cancel)
    {
        if (response.IsSuccessStatusCode) return;
        var status = (int)response.StatusCode;
        var code = Header(response, "X-Error-Code");
        var server = Header(response, "X-Error-Message") is { } header ? Abbreviate(OneLine(header)) : await ServerMessageAsync(response, url, cancel);
        var reason = response.ReasonPhrase is { Length: > 0 } phrase ? $" {Abbreviate(OneLine(phrase))}" : "";
        var detail = $"HTTP {status}{reason} from {url}{(server is null ? "" : $": {server}")}";
        var token = options.Token is null
            ? "no token was sent (set HF_TOKEN or log in with `hf auth login`)"
            : "the token sent does not grant access to it";
        var page = $"{Endpoint}/{spec.RepoId}";
        throw code switch
        {
            "RepoNotFound" => new FileNotFoundException($"{spec.RepoId}: repository not found on {Endpoint}; check the name; if it is private or gated, {token} ({detail})"),
            "RevisionNotFound" => new FileNotFoundException($"{spec.RepoId}: revision '{spec.Revision}' not found ({detail})"),
            "EntryNotFound" => new FileNotFoundException($"{spec.RepoId}: file '{filename}' not found at revision '{spec.Revision}' ({detail})"),
            "GatedRepo" => Gated(),
            _ when status is 401 or 403 => Gated(),
            _ when status == 404 => new FileNotFoundException(filename is null
                ? $"{spec.RepoId}: repository or revision '{spec.Revision}' not found on {Endpoint} ({detail})"
                : $"{spec.RepoId}: file '{filename}' not found at revision '{spec.Revision}' ({detail})"),
            _ => new HttpRequestException($"{spec}: {detail}", null, response.StatusCode),
        };

        Exception Gated() => new UnauthorizedAccessException(
            $"{spec.RepoId}: gated or private repository: accept its licence at {page} and set HF_TOKEN to a token of that account; {token} ({detail})");
    }

    /// <summary>
    /// The Hub's JSON error body {"error": "..."}, or the text of another body (a proxy's HTML page)
    /// on one line and abbreviated; null when empty. Only the first 64 KiB are read: a server may send
    /// gigabytes, or claim them in Content-Length.
    /// </summary>
    async Task<string?> ServerMessageAsync(HttpResponseMessage response, Uri url, CancellationToken cancel)
    {
        var start = new MemoryStream();
        try
        {
            await ReadStartAsync(response, url, start, MaxErrorBodyBytes, cancel);
        }
        catch (Exception e) when (e is IOException or HttpRequestException or TimeoutException)
        {
            // A body that breaks off or stalls: the status says what failed, and what arrived may say more.
        }
        var body = Encoding.UTF8.GetString(start.GetBuffer(), 0, (int)start.Length);
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var error))
                return Abbreviate(OneLine(error.ToString()));
        }
        catch (JsonException)
        {
            // Not JSON (a proxy's HTML page, plain text): its text is the message.
        }
        var html = response.Content.Headers.ContentType?.MediaType == "text/html" || body.TrimStart().StartsWith('<');
        var text = OneLine(html ? HtmlText(body) : body);
        return text.Length == 0 ? null : Abbreviate(text);
    }

    /// <summary>
    /// Reads <paramref name="response"/>'s body into <paramref name="into"/> up to <paramref name="limit"/>
    /// bytes; true when that was the whole body. Each read waits at most the timeout.
    /// </summary>
    async Task<bool> ReadStartAsync(HttpResponseMessage response, Uri url, MemoryStream into, int limit, CancellationToken cancel)
    {
        await using var body = await response.Content.ReadAsStreamAsync(cancel);
        var chunk = new byte[Math.Min(limit + 1, 1 << 16)];
        while (into.Length <= limit)
        {
            int read;
            try
            {
                read = await ReadAsync(body, chunk.AsMemory(0, (int)Math.Min(chunk.Length, limit + 1 - into.Length)), cancel);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"GET {url}: {e.Message}", e);
            }
            catch (OperationCanceledException e) when (cancel.IsCancellationRequested)
            {
                throw new OperationCanceledException($"GET {url}: stopped while reading the answer", e, cancel);
            }
            if (read == 0) return true;
            into.Write(chunk, 0, read);
        }
        into.SetLength(limit);
        return false;
    }

    /// <summary>
    /// One read of a response body that waits at most the timeout for data: a server that sends
    /// headers and then nothing must not hang the download. The TimeoutException names the timeout,
    /// the caller the URL or file.
    /// </summary>
    public async Task<int> ReadAsync(Stream body, Memory<byte> buffer, CancellationToken cancel)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timer.CancelAfter(options.DownloadTimeout);
        try
        {
            return await body.ReadAsync(buffer, timer.Token);
        }
        catch (OperationCanceledException e) when (!cancel.IsCancellationRequested)
        {
            throw new TimeoutException($"no data for {TimeoutText}", e);
        }
    }

    /// <summary>Line breaks and runs of white space as one space: every message is one line.</summary>
    static string OneLine(string text) => WhiteSpace().Replace(text, " ").Trim();

    /// <summary>At most 200 characters of <paramref name="text"/>, "..." marking a cut.</summary>
    static string Abbreviate(string text) => text.Length > 200 ? text[..200] + "..." : text;

    /// <summary>An HTML page's text: scripts, styles, comments and tags removed, entities decoded.</summary>
    static string HtmlText(string html) => WebUtility.HtmlDecode(Tag().Replace(Invisible().Replace(html, " "), " "));

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhiteSpace();

    [GeneratedRegex(@"<(script|style)\b.*?</\1\s*>|<!--.*?-->", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex Invisible();

    [GeneratedRegex("<[^>]*>")]
    private static partial Regex Tag();

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault() : null;

    /// <summary>huggingface_hub's _normalize_etag: drop a weak marker "W/" and the quotes.</summary>
    static string NormalizeEtag(string etag) =>
        (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    public void Dispose() => http.Dispose();
}
