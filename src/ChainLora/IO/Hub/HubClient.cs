// The Hub's HTTP API as huggingface_hub calls it: hf_api.model_info (GET api/models/{repo}/revision/{rev}),
// file_download.get_hf_file_metadata (HEAD resolve/{commit}/{file}, following relative redirects only,
// so an LFS file's 302 to the CDN is read, not followed), and utils/_http.py hf_raise_for_status
// (X-Error-Code names the failure). Redirects are followed here, not by the handler, so that the
// Authorization header is dropped when a redirect leaves the Hub's host, as requests does.
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

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

sealed class HubClient(HubOptions options) : IDisposable
{
    const int MaxRedirects = 10;

    readonly HttpClient http = new(
        options.Handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(10) },
        disposeHandler: options.Handler is null);

    public string Endpoint { get; } = options.Endpoint.TrimEnd('/');

    /// <summary>The commit <paramref name="spec"/>'s revision points at and every file path in it.</summary>
    public async Task<(string Commit, IReadOnlyCollection<string> Files)> ModelInfoAsync(HubModelSpec spec, CancellationToken cancel)
    {
        var url = new Uri($"{Endpoint}/api/models/{spec.RepoId}/revision/{Uri.EscapeDataString(spec.Revision)}");
        using var response = await SendAsync(HttpMethod.Get, url, followAbsolute: true, sendToken: true, rangeFrom: 0, cancel);
        await ThrowIfFailedAsync(response, url, spec, filename: null, cancel);
        try
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancel));
            var root = doc.RootElement;
            var commit = root.GetProperty("sha").GetString() ?? "";
            if (!HubModelSpec.IsCommitHash(commit)) throw new InvalidDataException($"GET {url}: field 'sha' is '{commit}', expected a 40-hex commit hash");
            var files = root.GetProperty("siblings").EnumerateArray().Select(s => s.GetProperty("rfilename").GetString()!).ToHashSet(StringComparer.Ordinal);
            return (commit, files);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"GET {url}: not the Hub's model info JSON ({e.Message})", e);
        }
    }

    /// <summary>HEAD resolve/{commit}/{file}: the blob name, size and download location; errors name the file.</summary>
    public async Task<HubFileMetadata> FileMetadataAsync(HubModelSpec spec, string commit, string filename, CancellationToken cancel)
    {
        var url = ResolveUrl(spec, commit, filename);
        using var response = await SendAsync(HttpMethod.Head, url, followAbsolute: false, sendToken: true, rangeFrom: 0, cancel);
        if ((int)response.StatusCode is < 300 or > 399) await ThrowIfFailedAsync(response, url, spec, filename, cancel);
        var repoCommit = Header(response, "X-Repo-Commit")
            ?? throw new InvalidDataException($"HEAD {url}: no X-Repo-Commit header; is {Endpoint} a Hugging Face Hub (a proxy or firewall may be answering)?");
        var etag = Header(response, "X-Linked-Etag") ?? Header(response, "ETag")
            ?? throw new InvalidDataException($"HEAD {url}: no ETag header, so the file cannot be named in the cache");
        var size = long.TryParse(Header(response, "X-Linked-Size"), out var linked) ? linked : response.Content.Headers.ContentLength ?? -1;
        var location = Header(response, "Location") is { } loc ? Redirect(url, loc) : url;
        etag = NormalizeEtag(etag);
        // The etag becomes a file name under blobs/: one that is no plain name would write elsewhere.
        if (etag.Length == 0 || etag is "." or ".." || etag.Any(c => c is '/' or '\\' || char.IsControl(c)))
            throw new InvalidDataException($"HEAD {url}: ETag '{etag}' cannot name a blob file");
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
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            }
            catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancel.IsCancellationRequested))
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
        var server = Header(response, "X-Error-Message") ?? await ServerMessageAsync(response, cancel);
        var detail = $"HTTP {status} from {url}{(server is null ? "" : $": {server}")}";
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
            _ => new HttpRequestException($"{spec}: {detail} {response.ReasonPhrase}", null, response.StatusCode),
        };

        Exception Gated() => new UnauthorizedAccessException(
            $"{spec.RepoId}: gated or private repository: accept its licence at {page} and set HF_TOKEN to a token of that account; {token} ({detail})");
    }

    /// <summary>The Hub's JSON error body {"error": "..."}, or the start of a text body; null when empty.</summary>
    static async Task<string?> ServerMessageAsync(HttpResponseMessage response, CancellationToken cancel)
    {
        var body = await response.Content.ReadAsStringAsync(cancel);
        if (body.Length == 0) return null;
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var error)) return error.ToString();
        }
        catch (JsonException)
        {
            // Not JSON (a proxy's HTML page, plain text): its start is the message.
        }
        return body.Length > 200 ? body[..200] + "..." : body;
    }

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault() : null;

    /// <summary>huggingface_hub's _normalize_etag: drop a weak marker "W/" and the quotes.</summary>
    static string NormalizeEtag(string etag) =>
        (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    public void Dispose() => http.Dispose();
}
