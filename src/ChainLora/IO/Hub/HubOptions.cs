// Where the Hub and its cache are, read from the environment as huggingface_hub's constants.py
// and utils/_auth.py get_token read them, so both share one cache and one token.
namespace ChainLora.IO.Hub;

/// <summary>
/// Hub endpoint, cache root, token, offline switch and read timeout. <see cref="Handler"/> replaces
/// the HTTP stack (tests point it at an in-process server); it must not follow redirects itself.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>huggingface_hub's DEFAULT_DOWNLOAD_TIMEOUT.</summary>
    public static readonly TimeSpan DefaultDownloadTimeout = TimeSpan.FromSeconds(10);

    public string Endpoint { get; init; } = DefaultEndpoint;
    public string CacheDir { get; init; } = DefaultCacheDir(Environment.GetEnvironmentVariable);
    public string? Token { get; init; }
    public bool Offline { get; init; }
    public HttpMessageHandler? Handler { get; init; }

    /// <summary>
    /// How long one HTTP read may wait: for a response's headers, and for each read of its body.
    /// A server that stops sending fails the download after this long instead of hanging it.
    /// </summary>
    public TimeSpan DownloadTimeout { get; init; } = DefaultDownloadTimeout;

    /// <summary>
    /// Reads HF_ENDPOINT, HF_HUB_CACHE (legacy HUGGINGFACE_HUB_CACHE), HF_HOME (XDG_CACHE_HOME),
    /// HF_TOKEN (legacy HUGGING_FACE_HUB_TOKEN) else the token file (HF_TOKEN_PATH or HF_HOME/token),
    /// HF_HUB_OFFLINE else TRANSFORMERS_OFFLINE, and HF_HUB_DOWNLOAD_TIMEOUT (seconds) through
    /// <paramref name="environment"/> (default: the process environment), with huggingface_hub's
    /// precedence. A value that cannot work (HF_ENDPOINT not an http(s) URL, a timeout that is no
    /// positive number) is an ArgumentException naming the variable.
    /// </summary>
    public static HubOptions FromEnvironment(Func<string, string?>? environment = null)
    {
        var env = NonEmpty(environment ?? Environment.GetEnvironmentVariable);
        var home = HfHome(env);
        return new HubOptions
        {
            Endpoint = env("HF_ENDPOINT") is { } endpoint ? CheckEndpoint(endpoint, "HF_ENDPOINT") : DefaultEndpoint,
            DownloadTimeout = env("HF_HUB_DOWNLOAD_TIMEOUT") is { } timeout ? ParseTimeout(timeout, "HF_HUB_DOWNLOAD_TIMEOUT") : DefaultDownloadTimeout,
            CacheDir = DefaultCacheDir(env),
            Token = CleanToken(env("HF_TOKEN") ?? env("HUGGING_FACE_HUB_TOKEN")) ?? TokenFromFile(env("HF_TOKEN_PATH") ?? Path.Combine(home, "token")),
            // `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE`: a set HF_HUB_OFFLINE=0 wins over TRANSFORMERS_OFFLINE=1.
            Offline = IsTrue(env("HF_HUB_OFFLINE") ?? env("TRANSFORMERS_OFFLINE")),
        };
    }

    /// <summary>Says whether a token is set, never the token: options end up in logs and exception messages.</summary>
    public override string ToString() =>
        $"HubOptions {{ Endpoint = {Endpoint}, CacheDir = {CacheDir}, Token = {(Token is null ? "none" : "set")}, Offline = {Offline}, DownloadTimeout = {DownloadTimeout.TotalSeconds:0.###} s }}";

    /// <summary>
    /// <paramref name="endpoint"/> without a trailing '/', when it is an absolute http or https URL
    /// with a host; otherwise an ArgumentException naming <paramref name="name"/>, the variable or
    /// option it came from (HttpClient would fail later with "Invalid URI" or NotSupportedException).
    /// </summary>
    public static string CheckEndpoint(string endpoint, string name)
    {
        var trimmed = endpoint.TrimEnd('/');
        return Uri.TryCreate(trimmed, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Host.Length > 0
            && uri.Query.Length == 0 && uri.Fragment.Length == 0
            ? trimmed
            : throw new ArgumentException($"{name} '{endpoint}': expected the Hub's http:// or https:// URL, such as {DefaultEndpoint}");
    }

    /// <summary>
    /// A timeout in seconds as huggingface_hub reads HF_HUB_DOWNLOAD_TIMEOUT (it takes integers; a
    /// fraction is accepted too). Zero, negative or unreadable values are refused naming
    /// <paramref name="name"/>, and so is more than a day, which a timer cannot hold much beyond.
    /// </summary>
    public static TimeSpan ParseTimeout(string seconds, string name) =>
        double.TryParse(seconds, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s)
        && s > 0 && s <= MaxTimeoutSeconds
            ? TimeSpan.FromSeconds(s)
            : throw new ArgumentException($"{name} '{seconds}': expected a number of seconds above 0 and at most {MaxTimeoutSeconds} " +
                $"(default {DefaultDownloadTimeout.TotalSeconds:0})");

    const int MaxTimeoutSeconds = 86_400;

    /// <summary>huggingface_hub's _is_true: 1, true, yes, on in any case.</summary>
    public static bool IsTrue(string? value) =>
        value?.ToUpperInvariant() is "1" or "TRUE" or "YES" or "ON";

    static string DefaultCacheDir(Func<string, string?> environment)
    {
        var env = NonEmpty(environment);
        return ExpandUser(env("HF_HUB_CACHE") ?? env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(HfHome(env), "hub"), env);
    }

    static string HfHome(Func<string, string?> env) =>
        ExpandUser(env("HF_HOME") ?? Path.Combine(env("XDG_CACHE_HOME") ?? Path.Combine(UserHome(env), ".cache"), "huggingface"), env);

    // Python's os.path.expanduser reads HOME (USERPROFILE on Windows).
    static string UserHome(Func<string, string?> env) =>
        env("HOME") ?? env("USERPROFILE") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    static string ExpandUser(string path, Func<string, string?> env) =>
        path == "~" ? UserHome(env)
        : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(UserHome(env), path[2..])
        : path;

    // An empty variable counts as unset, as `os.getenv(...) or default` treats it.
    static Func<string, string?> NonEmpty(Func<string, string?> env) => name => env(name) is { Length: > 0 } v ? v : null;

    static string? TokenFromFile(string path) => File.Exists(path) ? CleanToken(File.ReadAllText(path)) : null;

    static string? CleanToken(string? token) =>
        token?.Replace("\r", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal).Trim() is { Length: > 0 } t ? t : null;
}
