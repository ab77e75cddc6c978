using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ChainLora.IO;
using ChainLora.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), $"chainlora-st-{Guid.NewGuid():N}");

    public SafeTensorsTests()
    {
        NativeRuntime.Ensure();
        Directory.CreateDirectory(dir);
    }

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>One tensor per supported dtype, with the edge values each can hold (NaN, -0, inf, subnormal, extremes).</summary>
    static Dictionary<string, Tensor> EveryDType()
    {
        float[] floats = [1.5f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e-40f, 3.14159f, -65504f];
        return new()
        {
            ["f64"] = torch.tensor(new[] { 1.0 / 3, -0.0, double.NaN, double.Epsilon, double.MaxValue, -2 }).reshape(2, 3),
            ["f32"] = torch.tensor(floats).reshape(2, 4),
            ["f16"] = torch.tensor(floats).to_type(ScalarType.Float16),
            ["bf16"] = torch.tensor(floats).to_type(ScalarType.BFloat16).reshape(4, 2),
            ["i64"] = torch.tensor(new[] { long.MinValue, -1L, 0L, long.MaxValue }),
            ["i32"] = torch.tensor(new[] { int.MinValue, -7, int.MaxValue }),
            ["i16"] = torch.tensor(new short[] { short.MinValue, 3, short.MaxValue }),
            ["i8"] = torch.tensor(new sbyte[] { sbyte.MinValue, 0, sbyte.MaxValue }),
            ["u8"] = torch.tensor(new byte[] { 0, 128, 255 }),
            ["bool"] = torch.tensor(new[] { true, false, true }),
            ["scalar"] = torch.tensor(2.5f),
            ["empty"] = torch.zeros(0, 4),
        };
    }

    static void AssertBitExact(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected)
        {
            var a = actual[name];
            Assert.Equal(e.dtype, a.dtype);
            Assert.Equal(e.shape, a.shape);
            Assert.True(e.bytes.SequenceEqual(a.bytes), $"tensor '{name}' bytes differ");
        }
    }

    [Fact]
    public void Round_trip_keeps_every_dtype_bit_exact()
    {
        var tensors = EveryDType();
        var path = Path.Combine(dir, "all.safetensors");
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        AssertBitExact(tensors, SafeTensors.Load(path));
        Assert.Equal("pt", SafeTensors.ReadHeader(path).Metadata["format"]);
    }

    [Fact]
    public void Save_writes_sorted_keys_contiguous_offsets_and_aligned_header()
    {
        var path = Path.Combine(dir, "layout.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["b"] = torch.ones(3), ["a"] = torch.ones(2, dtype: ScalarType.Int64) });

        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        Assert.Equal(8 + headerLength + 16 + 12, bytes.Length);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        Assert.Equal(["a", "b"], doc.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal("[16,28]", doc.RootElement.GetProperty("b").GetProperty("data_offsets").GetRawText());
    }

    [Fact]
    public void Load_reads_a_file_laid_out_as_python_writes_it()
    {
        // safetensors.torch.save_file({"x": torch.tensor([1.5, -2.0])}, metadata={"format": "pt"}):
        // compact JSON with __metadata__ first, space-padded to a multiple of 8, then the raw f32 data.
        var header = "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        var path = WriteRaw("python.safetensors", header, [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0]);

        var x = SafeTensors.Load(path)["x"];
        Assert.Equal(ScalarType.Float32, x.dtype);
        Assert.Equal([2L], x.shape);
        Assert.Equal([1.5f, -2f], x.data<float>().ToArray());
        Assert.Equal("pt", SafeTensors.ReadHeader(path).Metadata["format"]);
    }

    [Fact]
    public void Load_casts_and_normalises_bool()
    {
        var header = "{\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}";
        var path = WriteRaw("bool.safetensors", header, [0, 7, 1]);
        Assert.Equal([false, true, true], SafeTensors.Load(path)["m"].data<bool>().ToArray());

        var f32 = Path.Combine(dir, "f32.safetensors");
        SafeTensors.Save(f32, new Dictionary<string, Tensor> { ["w"] = torch.tensor(new[] { 1f, 2f }) });
        var w = SafeTensors.Load(f32, castTo: ScalarType.BFloat16)["w"];
        Assert.Equal(ScalarType.BFloat16, w.dtype);
        Assert.Equal([1f, 2f], w.to_type(ScalarType.Float32).data<float>().ToArray());
    }

    [Fact]
    public void Truncated_file_is_rejected() =>
        AssertCorrupt("truncated.safetensors", [1, 0, 0, 0, 0], "truncated.safetensors", "header length");

    [Fact]
    public void Header_length_beyond_file_is_rejected()
    {
        var bytes = new byte[20];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        AssertCorrupt("long-header.safetensors", bytes, "long-header.safetensors", "header length 1000");
    }

    [Fact]
    public void Offsets_outside_data_are_rejected() =>
        AssertCorrupt("outside.safetensors", Raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]),
            "outside.safetensors", "'w'", "data_offsets [0, 16]");

    [Fact]
    public void Shape_times_dtype_size_mismatch_is_rejected() =>
        AssertCorrupt("mismatch.safetensors", Raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]),
            "mismatch.safetensors", "'w'", "shape [3]", "needs 12 bytes");

    [Fact]
    public void Overlapping_tensors_are_rejected() =>
        AssertCorrupt("overlap.safetensors", Raw(
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                new byte[12]),
            "overlap.safetensors", "'a'", "'b'", "overlap");

    [Fact]
    public void Unknown_dtype_is_rejected() =>
        AssertCorrupt("dtype.safetensors", Raw("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,1]}}", new byte[1]),
            "dtype.safetensors", "'w'", "'Q4'");

    [Fact]
    public void Negative_shape_is_rejected() =>
        AssertCorrupt("negative.safetensors", Raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", new byte[1]),
            "negative.safetensors", "'w'", "'shape'");

    [Fact]
    public void Non_JSON_header_is_rejected() =>
        AssertCorrupt("garbage.safetensors", Raw("this is not json", []), "garbage.safetensors", "JSON");

    [Fact]
    public void Invalid_UTF8_header_is_rejected()
    {
        var bytes = Raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", []);
        bytes[10] = 0xFF; // the tensor name "w"
        AssertCorrupt("utf8.safetensors", bytes, "utf8.safetensors", "UTF-8");
    }

    [Fact]
    public void Sharded_round_trip_writes_Hugging_Face_layout()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["layers.0.w"] = torch.randn(10, 10), // 400 bytes each
            ["layers.1.w"] = torch.randn(10, 10),
            ["lm_head.w"] = torch.randn(10, 10).to_type(ScalarType.BFloat16), // 200 bytes
        };
        SafeTensors.SaveSharded(dir, tensors, maxShardBytes: 500, cancel: TestContext.Current.CancellationToken);

        string[] shards = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"];
        Assert.Equal([.. shards, SafeTensors.IndexFileName], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, SafeTensors.IndexFileName)));
        Assert.Equal(1000, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        Assert.Equal(shards[2], index.RootElement.GetProperty("weight_map").GetProperty("lm_head.w").GetString());
        AssertBitExact(tensors, SafeTensors.LoadModelWeights(dir));

        // A save that fits one file replaces the shards and the index.
        SafeTensors.SaveSharded(dir, tensors, maxShardBytes: 1000, cancel: TestContext.Current.CancellationToken);
        Assert.Equal([SafeTensors.SingleFileName], Directory.GetFiles(dir).Select(Path.GetFileName));
        AssertBitExact(tensors, SafeTensors.LoadModelWeights(dir));
    }

    [Fact]
    public void Missing_shard_is_named_with_the_index()
    {
        SafeTensors.SaveSharded(dir, new Dictionary<string, Tensor> { ["a"] = torch.ones(4), ["b"] = torch.ones(4) }, maxShardBytes: 16, cancel: TestContext.Current.CancellationToken);
        File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));

        var e = Assert.Throws<FileNotFoundException>(() => SafeTensors.LoadModelWeights(dir));
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        Assert.Contains(SafeTensors.IndexFileName, e.Message);
    }

    [Fact]
    public void Index_that_disagrees_with_shards_is_rejected()
    {
        SafeTensors.SaveSharded(dir, new Dictionary<string, Tensor> { ["a"] = torch.ones(4), ["b"] = torch.ones(4) }, maxShardBytes: 16, cancel: TestContext.Current.CancellationToken);
        var indexPath = Path.Combine(dir, SafeTensors.IndexFileName);
        File.WriteAllText(indexPath, File.ReadAllText(indexPath).Replace("\"b\"", "\"ghost\""));

        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.LoadModelWeights(dir));
        Assert.Contains("missing 1: 'ghost'", e.Message);
        Assert.Contains("unexpected 1: 'b'", e.Message);
    }

    [Fact]
    public void Empty_model_dir_names_both_files()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SafeTensors.LoadModelWeights(dir));
        Assert.Contains(dir, e.Message);
        Assert.Contains(SafeTensors.IndexFileName, e.Message);
        Assert.Contains(SafeTensors.SingleFileName, e.Message);
    }

    [Fact]
    public void Save_over_existing_file_leaves_no_temp_file()
    {
        var path = Path.Combine(dir, "w.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = torch.zeros(1000) });
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = torch.ones(3) });

        Assert.Equal([path], Directory.GetFiles(dir));
        Assert.Equal([1f, 1f, 1f], SafeTensors.Load(path)["w"].data<float>().ToArray());
    }

    static byte[] Raw(string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header.PadRight((header.Length + 7) / 8 * 8));
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }

    string WriteRaw(string name, string header, byte[] data)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, Raw(header, data));
        return path;
    }

    void AssertCorrupt(string name, byte[] bytes, params string[] expected)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        foreach (var part in expected) Assert.Contains(part, e.Message);
    }
}
