// Sizes as users write them ("2GB", "500MiB", "123") and as messages print them.
using System.Globalization;
using System.Text.RegularExpressions;

namespace ChainLora.IO;

public static partial class ByteSize
{
    [GeneratedRegex(@"^\s*(?<n>\d+(\.\d+)?)\s*(?<unit>[KMGT]i?B|B)?\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex SizePattern();

    /// <summary>"2GB" (10^9, as transformers' convert_file_size_to_int), "500MiB" (2^20), "123" bytes.</summary>
    public static long Parse(string text)
    {
        var m = SizePattern().Match(text);
        if (!m.Success) throw new ArgumentException($"size '{text}': expected a number of bytes or e.g. 2GB, 500MB, 1GiB");
        var factor = (m.Groups["unit"].Success ? m.Groups["unit"].Value.ToUpperInvariant() : "B") switch
        {
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            "KIB" => 1L << 10,
            "MIB" => 1L << 20,
            "GIB" => 1L << 30,
            "TIB" => 1L << 40,
            _ => 1.0,
        };
        var bytes = double.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture) * factor;
        return bytes is >= 1 and < long.MaxValue ? (long)bytes : throw new ArgumentException($"size '{text}': must be between 1 byte and 8 EiB");
    }

    /// <summary>"13.5 GiB", "812 MiB", "4 KiB".</summary>
    public static string Format(double bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (1L << 30):F1} GiB",
        >= 1L << 20 => $"{bytes / (1L << 20):F0} MiB",
        _ => $"{Math.Ceiling(bytes / 1024):F0} KiB",
    };
}
