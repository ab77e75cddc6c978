// Two ways a Hub download fails that are nobody's input: the server answered something unusable,
// or the download stopped part-way. Both are IOExceptions, so the CLI exits 1 for them.
namespace ChainLora.IO.Hub;

/// <summary>
/// The server at the Hub endpoint answered, but not as the Hub does (a header missing, an ETag that
/// cannot name a file, model info that is not the Hub's JSON). Not the user's input: the server,
/// or a proxy in front of it, is at fault.
/// </summary>
public sealed class HubResponseException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// A file's download stopped part-way (the connection broke, the server went silent for the
/// timeout, the disk filled). The bytes received are kept in <see cref="Partial"/> on purpose: the
/// next download of the file resumes from them with a Range request. The HResult is the cause's, so
/// a full disk is still recognised as one.
/// </summary>
public sealed class PartialDownloadException : IOException
{
    public PartialDownloadException(string message, string partial, Exception cause) : base(message, cause)
    {
        Partial = partial;
        HResult = cause.HResult;
    }

    /// <summary>The blobs/{etag}.incomplete file that holds the bytes received so far.</summary>
    public string Partial { get; }
}
