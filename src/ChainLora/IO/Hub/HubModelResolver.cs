// `--model org/name[@revision]`: the local snapshot folder of a Hub model, taken from the Hugging
// Face cache or downloaded into it, as huggingface_hub.snapshot_download with a filter on the files
// a model needs (HubFileSelection). Python and ChainLora share the cache both ways.
namespace ChainLora.IO.Hub;

/// <summary>Turns a Hub model spec into a local directory that PretrainedModel.Load reads.</summary>
public static class HubModelResolver
{
    /// <summary>
    /// True when <paramref name="spec"/> is meant as a Hub model: <c>name</c> or <c>org/name</c>,
    /// optionally with <c>@revision</c>. Only the repo id has to be valid, so that "org/name@" is
    /// refused by <see cref="HubModelSpec.Parse"/> for its empty revision rather than reported as a
    /// missing folder. Callers check for an existing directory first: a directory always wins.
    /// </summary>
    public static bool LooksLikeRepoId(string spec) => HubModelSpec.HasValidRepoId(spec);

    /// <summary>
    /// The cached snapshot folder of <paramref name="spec"/> when it holds config.json and whole
    /// weights, else null; no network. Uses refs/{revision} for branches and tags.
    /// </summary>
    public static string? FindCached(string spec, HubOptions? options = null)
    {
        var model = HubModelSpec.Parse(spec);
        var snapshot = new HubCache((options ?? HubOptions.FromEnvironment()).CacheDir).FindSnapshot(model);
        return snapshot is not null && HubFileSelection.Missing(snapshot) is null ? snapshot : null;
    }

    /// <summary>
    /// Blocking form of <see cref="ResolveAsync"/>, for loaders that are synchronous; run on the
    /// thread pool so that a caller's synchronization context cannot deadlock it.
    /// </summary>
    public static string Resolve(string spec, HubOptions? options = null, IProgress<HubFileProgress>? progress = null, CancellationToken cancel = default) =>
        Task.Run(() => ResolveAsync(spec, options, progress, cancel)).GetAwaiter().GetResult();

    /// <summary>
    /// The snapshot folder of <paramref name="spec"/>: the cached one when it holds a whole model
    /// (no request is made, so a cached branch is not checked for newer commits), else downloaded
    /// unless <see cref="HubOptions.Offline"/>. <paramref name="progress"/> hears each downloaded file.
    /// Errors: ArgumentException (bad spec), DirectoryNotFoundException (offline and not cached),
    /// FileNotFoundException (repo, revision or file missing), UnauthorizedAccessException (gated or
    /// private), InvalidDataException (corrupt download, damaged cache), HttpRequestException (network,
    /// server errors), TimeoutException (no answer within <see cref="HubOptions.DownloadTimeout"/>),
    /// <see cref="PartialDownloadException"/> (a file stopped part-way, kept to resume),
    /// <see cref="HubResponseException"/> (an answer unlike the Hub's), OperationCanceledException
    /// (<paramref name="cancel"/>; a partial file is kept and named).
    /// </summary>
    public static async Task<string> ResolveAsync(string spec, HubOptions? options = null, IProgress<HubFileProgress>? progress = null,
        CancellationToken cancel = default)
    {
        options ??= HubOptions.FromEnvironment();
        var model = HubModelSpec.Parse(spec);
        var cache = new HubCache(options.CacheDir);
        var snapshot = cache.FindSnapshot(model);
        var missing = snapshot is null ? null : HubFileSelection.Missing(snapshot);
        if (snapshot is not null && missing is null) return snapshot;
        if (options.Offline)
            throw new DirectoryNotFoundException(snapshot is null
                ? $"model {model.RepoId} revision '{model.Revision}' is not in the Hugging Face cache (looked in {cache.RepoFolder(model)}) " +
                  "and HF_HUB_OFFLINE is set; unset it to download, or set HF_HUB_CACHE to the cache that has the model"
                : $"model {model.RepoId} revision '{model.Revision}': the cached snapshot {snapshot} lacks {missing} " +
                  "and HF_HUB_OFFLINE is set; unset it to download the rest");
        using var client = new HubClient(options);
        return await DownloadAsync(client, cache, model, progress, cancel);
    }

    /// <summary>snapshot_download: ask the Hub for the commit and file list, fetch the chosen files, then record the ref.</summary>
    static async Task<string> DownloadAsync(HubClient client, HubCache cache, HubModelSpec model, IProgress<HubFileProgress>? progress,
        CancellationToken cancel)
    {
        var (commit, repoFiles) = await client.ModelInfoAsync(model, cancel);
        var (files, weights) = HubFileSelection.Select(model, repoFiles);
        foreach (var file in files) await FetchAsync(client, cache, model, commit, file, progress, cancel);
        // An index names its shards only once it is on disk.
        foreach (var shard in HubFileSelection.Shards(cache.SnapshotFile(model, commit, weights)))
        {
            if (!repoFiles.Contains(shard))
                throw new FileNotFoundException($"{model}: {weights} lists shard '{shard}', which the repository does not have");
            await FetchAsync(client, cache, model, commit, shard, progress, cancel);
        }
        cache.WriteRef(model, commit);
        return cache.SnapshotFolder(model, commit);
    }

    /// <summary>
    /// hf_hub_download into the cache: nothing when the snapshot already has the file, a link when
    /// the blob is there (another revision, another process), else a verified download.
    /// </summary>
    static async Task FetchAsync(HubClient client, HubCache cache, HubModelSpec model, string commit, string filename,
        IProgress<HubFileProgress>? progress, CancellationToken cancel)
    {
        var pointer = cache.SnapshotFile(model, commit, filename);
        if (HubCache.IsPresent(pointer)) return;
        var file = await client.FileMetadataAsync(model, commit, filename, cancel);
        var blob = cache.BlobPath(model, file.Etag);
        if (!File.Exists(blob))
        {
            using var held = await cache.LockBlobAsync(model, file.Etag, cancel);
            // The lock's previous holder may have just finished this blob.
            if (!File.Exists(blob)) await HubDownloader.DownloadBlobAsync(client, model, file, blob, progress, cancel);
        }
        HubCache.Link(blob, pointer);
    }
}
