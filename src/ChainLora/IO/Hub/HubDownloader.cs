// One blob downloaded into the cache as huggingface_hub's file_download.http_get and
// _download_to_tmp_and_move do it: bytes go to blobs/{etag}.incomplete, an interrupted download is
// resumed with a Range request, the size and (for LFS files) the sha256 are checked, and only a
// verified blob is renamed to blobs/{etag}.
using System.Net;
using System.Security.Cryptography;

namespace ChainLora.IO.Hub;

/// <summary>Bytes of one repo file received so far; <see cref="TotalBytes"/> is -1 when the server did not say.</summary>
public readonly record struct HubFileProgress(string File, long BytesDone, long TotalBytes);

static class HubDownloader
{
    const int BufferSize = 1 << 20;
    // Progress is reported at most once per this many bytes (and at the start and end of a file).
    const long ReportEvery = 1 << 20;

    /// <summary>
    /// Downloads <paramref name="file"/> to <paramref name="blob"/>. A failure mid-body, a short
    /// body or a cancellation leaves the .incomplete file for the next run to resume from, and says
    /// so; too many bytes or a wrong hash deletes it and throws.
    /// </summary>
    public static async Task DownloadBlobAsync(HubClient client, HubModelSpec spec, HubFileMetadata file, string blob,
        IProgress<HubFileProgress>? progress, CancellationToken cancel)
    {
        var incomplete = blob + ".incomplete";
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        var done = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
        if (file.Size >= 0 && done > file.Size) done = Restart(incomplete);
        try
        {
            // A server answering every request with a range other than the one asked for would send
            // this loop round forever: two restarts from byte 0 are all a sane server needs.
            for (var attempt = 0; !File.Exists(incomplete) || file.Size < 0 || done < file.Size; attempt++)
            {
                if (attempt > 2)
                    throw new HttpRequestException($"{spec}: {file.Filename}: the server answered {attempt} requests with ranges " +
                        $"other than the one asked for; cannot download it");
                using var response = await client.DownloadAsync(spec, file, done, cancel);
                // The range of a stale .incomplete was refused: ask again for the whole file.
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                {
                    done = Restart(incomplete);
                    continue;
                }
                // A server that ignores Range answers 200 with the whole file: start over from byte 0.
                if (response.StatusCode != HttpStatusCode.PartialContent) done = 0;
                else if (response.Content.Headers.ContentRange?.From != done)
                {
                    // Some other range than the one asked for: ask for the whole file instead.
                    done = Restart(incomplete);
                    continue;
                }
                done = await ReceiveAsync(client, response, file, incomplete, done, progress, cancel);
                break;
            }
        }
        catch (OperationCanceledException e) when (cancel.IsCancellationRequested)
        {
            throw new OperationCanceledException($"{file.Filename}: download stopped; {Kept(incomplete)}", e, cancel);
        }
        Verify(file, incomplete, done);
        File.Move(incomplete, blob, overwrite: true);
        // Reported whole only now: a line saying "downloaded" must not precede a full disk or a bad hash.
        progress?.Report(new HubFileProgress(file.Filename, done, file.Size));
    }

    /// <summary>
    /// Appends the response body to <paramref name="incomplete"/> (truncated first when <paramref name="done"/>
    /// is 0); returns its new length. Each read waits at most the client's timeout.
    /// </summary>
    static async Task<long> ReceiveAsync(HubClient client, HttpResponseMessage response, HubFileMetadata file, string incomplete, long done,
        IProgress<HubFileProgress>? progress, CancellationToken cancel)
    {
        try
        {
            // Unbuffered: each chunk is on disk as soon as it arrives, so a process killed or stopped
            // mid-download keeps every byte it received, and a full disk fails the chunk that does not fit.
            await using var output = new FileStream(incomplete, done == 0 ? FileMode.Create : FileMode.Append, FileAccess.Write, FileShare.None,
                bufferSize: 0, useAsync: true);
            await using var body = await response.Content.ReadAsStreamAsync(cancel);
            var buffer = new byte[BufferSize];
            progress?.Report(new HubFileProgress(file.Filename, done, file.Size));
            var reported = done;
            while (await client.ReadAsync(body, buffer, cancel) is var read && read > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, read), cancel);
                done += read;
                if (done - reported >= ReportEvery && done != file.Size)
                {
                    progress?.Report(new HubFileProgress(file.Filename, done, file.Size));
                    reported = done;
                }
            }
        }
        catch (Exception e) when (e is IOException or TimeoutException or HttpRequestException)
        {
            throw new PartialDownloadException($"{file.Filename}: download from {file.Location.GetLeftPart(UriPartial.Authority)} stopped after " +
                $"{Bytes(done, file.Size)} ({e.Message}); {Kept(incomplete)}", incomplete, e);
        }
        return done;
    }

    /// <summary>Size against X-Linked-Size / Content-Length, and an LFS blob's sha256 against its etag; a bad blob is deleted.</summary>
    static void Verify(HubFileMetadata file, string incomplete, long done)
    {
        if (file.Size >= 0 && done < file.Size)
            throw new PartialDownloadException($"{file.Filename}: the server sent {Bytes(done, file.Size)}; {Kept(incomplete)}", incomplete,
                new EndOfStreamException());
        if (file.Size >= 0 && done > file.Size)
        {
            File.Delete(incomplete);
            throw new InvalidDataException($"{file.Filename}: received {done} bytes, the Hub says {file.Size}; the blob was deleted, run again");
        }
        if (!file.IsLfs) return;
        string actual;
        using (var stream = new FileStream(incomplete, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize))
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (actual == file.Etag) return;
        File.Delete(incomplete);
        throw new InvalidDataException($"{file.Filename}: sha256 of the downloaded bytes is {actual}, the Hub says {file.Etag}; " +
            "the corrupt blob was deleted, run again");
    }

    /// <summary>"1,000 of 40,000 bytes"; the total is unknown when the server did not say it.</summary>
    static string Bytes(long done, long size) => size >= 0 ? $"{done:N0} of {size:N0} bytes" : $"{done:N0} bytes";

    /// <summary>What a stopped download leaves, in words: the partial blob is kept on purpose, to resume from.</summary>
    static string Kept(string incomplete) =>
        File.Exists(incomplete) && new FileInfo(incomplete).Length is > 0 and var kept
            ? $"the partial download ({kept:N0} bytes) is kept at {incomplete}, and the next run resumes from it"
            : "nothing was kept";

    static long Restart(string incomplete)
    {
        File.Delete(incomplete);
        return 0;
    }
}
