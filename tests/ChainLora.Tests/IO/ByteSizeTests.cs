using ChainLora.IO;

namespace ChainLora.Tests.IO;

public class ByteSizeTests
{
    [Theory]
    [InlineData("2GB", 2_000_000_000L)]
    [InlineData("500MB", 500_000_000L)]
    [InlineData("1GiB", 1L << 30)]
    [InlineData("1.5TiB", 3L << 39)]
    [InlineData("20kb", 20_000L)]
    [InlineData("123", 123L)]
    public void Sizes_parse_like_transformers(string text, long bytes) => Assert.Equal(bytes, ByteSize.Parse(text));

    [Theory]
    [InlineData("0")]
    [InlineData("-1GB")]
    [InlineData("12 parsecs")]
    [InlineData("99999999999TiB")]
    public void Bad_sizes_are_named(string text) => Assert.Contains($"'{text}'", Assert.Throws<ArgumentException>(() => ByteSize.Parse(text)).Message);

    [Theory]
    [InlineData(13.5 * (1L << 30), "13.5 GiB")]
    [InlineData(812.0 * (1 << 20), "812 MiB")]
    [InlineData(1000.0, "1 KiB")]
    public void Sizes_print_in_binary_units(double bytes, string text) => Assert.Equal(text, ByteSize.Format(bytes));
}
