using System.IO.Compression;
using System.Text;
using ChainLora.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.Tests.IO;

/// <summary>
/// PyTorchCheckpoint against checkpoints torch.save wrote (scripts/make_pytorch_fixtures.py), each compared
/// element by element with an expected.safetensors the script wrote by hand; and against damaged or hostile
/// archives built here, each of which must be refused with a message naming the file.
/// </summary>
public sealed class PyTorchCheckpointTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), $"chainlora-pt-{Guid.NewGuid():N}");

    public PyTorchCheckpointTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Fp16_checkpoint_matches_the_reference_in_every_element()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("opt-fp16/pytorch_model.bin"));

        Assert.All(checkpoint.Tensors.Values, t => Assert.Equal(ScalarType.Float16, t.DType));
        Assert.Equal([8L, 32L], checkpoint.Tensors["model.decoder.layers.1.fc2.weight"].Shape);
        Assert.Equal(2 + 2 * 16 + 2 + 1, checkpoint.Tensors.Count);
        AssertMatchesExpected(checkpoint, Fixtures.PyTorch("opt-fp16/expected.safetensors"), ScalarType.Float32);
    }

    [Fact]
    public void Tied_LM_head_shares_the_embedding_storage_and_both_read()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("opt-fp16/pytorch_model.bin"));
        var expected = SafeTensors.Load(Fixtures.PyTorch("opt-fp16/expected.safetensors"))["model.decoder.embed_tokens.weight"];

        var embed = torch.empty(16, 8);
        var head = torch.empty(16, 8);
        checkpoint.CopyTo("model.decoder.embed_tokens.weight", embed);
        checkpoint.CopyTo("lm_head.weight", head);

        Assert.Equal(expected.data<float>().ToArray(), embed.data<float>().ToArray());
        Assert.Equal(expected.data<float>().ToArray(), head.data<float>().ToArray());
        Assert.NotEqual(0f, head.abs().sum().item<float>());
    }

    [Fact]
    public void Bf16_checkpoint_reads_into_bf16_and_fp32_destinations()
    {
        // Pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) in an 'archive/' folder.
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("bf16/pytorch_model.bin"));
        var expected = Fixtures.PyTorch("bf16/expected.safetensors");

        Assert.All(checkpoint.Tensors.Values, t => Assert.Equal(ScalarType.BFloat16, t.DType));
        Assert.Equal([300L, 8L], checkpoint.Tensors["model.decoder.embed_positions.weight"].Shape);
        AssertMatchesExpected(checkpoint, expected, ScalarType.Float32);
        AssertMatchesExpected(checkpoint, expected, ScalarType.BFloat16);
    }

    [Fact]
    public void Fp16_checkpoint_reads_into_a_bf16_destination()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("opt-fp16/pytorch_model.bin"));
        AssertMatchesExpected(checkpoint, Fixtures.PyTorch("opt-fp16/expected.safetensors"), ScalarType.BFloat16);
    }

    [Fact]
    public void Views_read_with_their_strides_and_storage_offsets()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("views/pytorch_model.bin"));

        Assert.Equal([3L, 5L], checkpoint.Tensors["transposed"].Shape);
        Assert.Equal([4L, 5L], checkpoint.Tensors["window"].Shape);
        Assert.Equal([10L], checkpoint.Tensors["far_slice"].Shape);
        Assert.Empty(checkpoint.Tensors["scalar"].Shape);
        var types = checkpoint.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value.DType);
        Assert.Equal(ScalarType.Float32, types["window"]);
        Assert.Equal(ScalarType.Float64, types["f64"]);
        Assert.Equal(ScalarType.Int64, types["i64"]);
        Assert.Equal(ScalarType.Int32, types["i32"]);
        Assert.Equal(ScalarType.Int16, types["i16"]);
        Assert.Equal(ScalarType.Int8, types["far_slice"]);
        Assert.Equal(ScalarType.Byte, types["u8"]);
        Assert.Equal(ScalarType.Bool, types["bool"]);
        AssertMatchesExpected(checkpoint, Fixtures.PyTorch("views/expected.safetensors"));
        var extremes = torch.empty(4, dtype: ScalarType.Int64);
        checkpoint.CopyTo("i64", extremes);
        Assert.Equal([long.MinValue, -1, 0, long.MaxValue], extremes.data<long>().ToArray());
    }

    [Fact]
    public void Zip64_records_are_read()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("zip64/pytorch_model.bin"));
        AssertMatchesExpected(checkpoint, Fixtures.PyTorch("views/expected.safetensors"));
    }

    [Fact]
    public void Each_shard_holds_what_the_index_maps_to_it()
    {
        var shardDir = Fixtures.PyTorch("sharded");
        var weightMap = Fixtures.Json(Path.Combine(shardDir, "pytorch_model.bin.index.json")).GetProperty("weight_map")
            .EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        var expected = SafeTensors.Load(Path.Combine(shardDir, "expected.safetensors"));
        var seen = new List<string>();
        foreach (var shard in weightMap.Values.Distinct())
        {
            using var checkpoint = PyTorchCheckpoint.Open(Path.Combine(shardDir, shard));
            Assert.Equal(weightMap.Where(kv => kv.Value == shard).Select(kv => kv.Key).Order(), checkpoint.Tensors.Keys.Order());
            foreach (var name in checkpoint.Tensors.Keys)
                AssertTensor(checkpoint, name, expected[name], ScalarType.Float32);
            seen.AddRange(checkpoint.Tensors.Keys);
        }
        Assert.Equal(2, weightMap.Values.Distinct().Count());
        Assert.Equal(expected.Keys.Order(), seen.Order());
    }

    [Fact]
    public void Deflated_entries_are_read_through_the_stream_path()
    {
        var path = Rewrite("views/pytorch_model.bin", "deflated.bin", (_, data) => data, CompressionLevel.SmallestSize);
        using (var zip = ZipFile.OpenRead(path))
            Assert.True(zip.Entries.Single(e => e.Name == "data.pkl").CompressedLength < zip.Entries.Single(e => e.Name == "data.pkl").Length);

        using var checkpoint = PyTorchCheckpoint.Open(path);
        AssertMatchesExpected(checkpoint, Fixtures.PyTorch("views/expected.safetensors"));
    }

    [Fact]
    public void Hand_written_pickle_with_the_remaining_opcodes_reads()
    {
        // A dict holding non-tensor values (skipped) and a tensor recalled through LONG_BINGET, with keys
        // in BINUNICODE8 and values in BINFLOAT, NONE, LONG1, TUPLE3, EMPTY_LIST, APPEND and APPENDS.
        var p = new PickleWriter().Proto().Op('}').Op('(')
            .Unicode8("weight").Tensor("FloatStorage", "0", 5, 1, [2, 2], [1, 2]).Op('r').U32(300)
            .Str("tied").Op('j').U32(300)
            .Str("step").Float(3.5)
            .Str("big").Long1(-(1L << 40))
            .Str("triple").Op('N').Int(7).Op(0x88).Op(0x87)
            .Str("list").Op(']').Int(1).Op('a').Op('(').Int(2).Int(3).Op('e')
            .Op('u').Op('.');
        var path = Craft("crafted.bin", p.ToArray(), ("0", Floats(1, 2, 3, 4, 5)));

        using var checkpoint = PyTorchCheckpoint.Open(path);
        Assert.Equal(["tied", "weight"], checkpoint.Tensors.Keys.Order());
        foreach (var name in new[] { "weight", "tied" })
        {
            var w = torch.empty(2, 2);
            checkpoint.CopyTo(name, w);
            Assert.Equal([2f, 4f, 3f, 5f], w.data<float>().ToArray()); // offset 1, transposed
        }
    }

    [Fact]
    public void Hostile_pickle_is_refused_naming_the_global()
    {
        var path = Fixtures.PyTorch("hostile/pytorch_model.bin");
        var e = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("global 'posix.system' is not allowed", e.Message);
        Assert.Contains("data.pkl", e.Message);
        Assert.Contains("byte 183", e.Message); // the GLOBAL opcode's offset, as pickletools.dis shows it
    }

    [Fact]
    public void Stack_global_of_builtins_eval_is_refused()
    {
        var p = new PickleWriter().Proto().Str("builtins").Str("eval").Op(0x93).Str("1+1").Op(0x85).Op('R').Op('.');
        AssertRefused(Craft("eval.bin", p.ToArray()), "global 'builtins.eval' is not allowed", "byte 24");
    }

    [Fact]
    public void Legacy_format_is_refused() =>
        AssertRefused(Fixtures.PyTorch("legacy/pytorch_model.bin"), "legacy (pre-1.6) torch.save format", "_use_new_zipfile_serialization=True");

    [Fact]
    public void Truncated_file_is_refused()
    {
        var bytes = File.ReadAllBytes(Fixtures.PyTorch("opt-fp16/pytorch_model.bin"));
        var path = Path.Combine(dir, "truncated.bin");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        AssertRefused(path, "no zip end-of-central-directory record", "truncated");
    }

    [Fact]
    public void Unknown_opcode_is_refused_with_its_offset()
    {
        // Byte 2 of data.pkl is the GLOBAL after PROTO 2; 0xFF is no pickle opcode.
        var path = Rewrite("opt-fp16/pytorch_model.bin", "opcode.bin", (name, data) =>
        {
            if (name.EndsWith("/data.pkl", StringComparison.Ordinal))
            {
                Assert.Equal((byte)'c', data[2]);
                data[2] = 0xFF;
            }
            return data;
        });
        AssertRefused(path, "data.pkl", "byte 2", "opcode 0xFF");
    }

    [Fact]
    public void Missing_storage_entry_is_refused()
    {
        var path = Rewrite("views/pytorch_model.bin", "missing.bin", (name, data) => name.EndsWith("/data/1", StringComparison.Ordinal) ? null : data);
        AssertRefused(path, "tensor 'transposed'", "storage entry 'pytorch_model/data/1' is missing");
    }

    [Fact]
    public void Offset_past_the_storage_is_refused()
    {
        var p = new PickleWriter().Proto().Op('}').Op('(').Str("w").Tensor("FloatStorage", "0", 8, 5, [4], [1]).Op('u').Op('.');
        AssertRefused(Craft("offset.bin", p.ToArray(), ("0", Floats(1, 2, 3, 4, 5, 6, 7, 8))),
            "tensor 'w'", "storage offset 5", "reaches element 9, past the 8 Float32 elements");
    }

    [Fact]
    public void Storage_entry_shorter_than_the_view_is_refused()
    {
        var path = Rewrite("views/pytorch_model.bin", "short.bin", (name, data) => name.EndsWith("/data/3", StringComparison.Ordinal) ? data[..40] : data);
        AssertRefused(path, "tensor 'window'", "reaches element 39, past the 10 Float32 elements");
    }

    [Fact]
    public void Overflowing_view_is_refused()
    {
        var p = new PickleWriter().Proto().Op('}').Op('(').Str("w").Tensor("FloatStorage", "0", 8, long.MaxValue, [2], [1]).Op('u').Op('.');
        AssertRefused(Craft("overflow.bin", p.ToArray(), ("0", Floats(1, 2))), "tensor 'w'", "overflows");
    }

    [Fact]
    public void Persistent_id_that_is_not_a_storage_is_refused()
    {
        var p = new PickleWriter().Proto().Op('}').Str("w").Op('(').Str("module").Str("x").Op('t').Op('Q').Op('s').Op('.');
        AssertRefused(Craft("pid.bin", p.ToArray()), "persistent id a tuple of 2 (the string 'module'", "is not a storage reference", "byte 28");
    }

    [Fact]
    public void Big_endian_byteorder_is_refused()
    {
        var p = new PickleWriter().Proto().Op('}').Op('.');
        AssertRefused(Craft("big.bin", p.ToArray(), byteorder: "big"), "byteorder is 'big'");
    }

    /// <summary>
    /// A million nested one-tuples: the error describes the root a few levels deep instead of
    /// recursing through it (a stack overflow ends a .NET process uncatchably).
    /// </summary>
    [Fact]
    public void Deeply_nested_tuples_are_refused_without_recursing_through_them()
    {
        var p = new PickleWriter().Proto().Op('N');
        for (var i = 0; i < 1_000_000; i++) p.Op(0x85);
        AssertRefused(Craft("nested.bin", p.Op('.').ToArray()), "not a state dict", "a tuple of 1");
    }

    /// <summary>Each opcode may make an object: a pickle of millions of empty dicts is refused, not built.</summary>
    [Fact]
    public void A_pickle_of_millions_of_objects_is_refused()
    {
        var p = new PickleWriter().Proto().Op('(');
        for (var i = 0; i < 4_100_000; i++) p.Op('}');
        AssertRefused(Craft("objects.bin", p.Op('t').Op('.').ToArray()), "more than 4000000 opcodes");
    }

    [Fact]
    public void Copy_to_fills_a_view_or_a_parameter_in_place()
    {
        // Contiguous tensors of the destination's dtype are read straight into its memory: check that
        // lands where the destination's elements are, and that a parameter that requires grad accepts it.
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("views/pytorch_model.bin"));
        var expected = SafeTensors.Load(Fixtures.PyTorch("views/expected.safetensors"));
        var outer = torch.full(10, 7f);
        checkpoint.CopyTo("slice", outer.narrow(0, 1, 8));
        Assert.Equal([7f, .. expected["slice"].data<float>().ToArray(), 7f], outer.data<float>().ToArray());

        var parameter = new TorchSharp.Modules.Parameter(torch.zeros(3, 4));
        checkpoint.CopyTo("plain", parameter);
        Assert.True(parameter.requires_grad);
        Assert.Equal(expected["plain"].data<float>().ToArray(), parameter.detach().data<float>().ToArray());
    }

    [Fact]
    public void Copy_to_checks_the_name_and_the_shape()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Fixtures.PyTorch("views/pytorch_model.bin"));
        var missing = Assert.Throws<KeyNotFoundException>(() => checkpoint.CopyTo("nope", torch.empty(1)));
        Assert.Contains("'nope'", missing.Message);
        var shape = Assert.Throws<ArgumentException>(() => checkpoint.CopyTo("transposed", torch.empty(5, 3)));
        Assert.Contains("[3, 5]", shape.Message);
        Assert.Contains("views", shape.Message);
    }

    static void AssertMatchesExpected(PyTorchCheckpoint checkpoint, string expectedPath, ScalarType? into = null)
    {
        var expected = SafeTensors.Load(expectedPath);
        Assert.Equal(expected.Keys.Order(), checkpoint.Tensors.Keys.Order());
        foreach (var (name, e) in expected) AssertTensor(checkpoint, name, e, into ?? e.dtype);
    }

    /// <summary>Reads <paramref name="name"/> into a fresh <paramref name="into"/> tensor; its bytes must equal the expected value's.</summary>
    static void AssertTensor(PyTorchCheckpoint checkpoint, string name, Tensor expected, ScalarType into)
    {
        Assert.Equal(expected.shape, checkpoint.Tensors[name].Shape);
        var actual = torch.full(expected.shape, 7, into); // not zeros: an unread element would show
        checkpoint.CopyTo(name, actual);
        var want = expected.to_type(into);
        Assert.True(want.bytes.SequenceEqual(actual.bytes), $"tensor '{name}' read as {into} differs from the reference");
    }

    void AssertRefused(string path, params string[] expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        foreach (var part in expected) Assert.Contains(part, e.Message);
    }

    /// <summary>Copies a fixture's entries into a new archive, changing or dropping (null) each one's data.</summary>
    string Rewrite(string fixture, string name, Func<string, byte[], byte[]?> change, CompressionLevel level = CompressionLevel.NoCompression)
    {
        var path = Path.Combine(dir, name);
        using var source = ZipFile.OpenRead(Fixtures.PyTorch(fixture));
        using var target = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var entry in source.Entries)
        {
            using var input = new MemoryStream();
            using (var s = entry.Open()) s.CopyTo(input);
            if (change(entry.FullName, input.ToArray()) is not { } data) continue;
            using var output = target.CreateEntry(entry.FullName, level).Open();
            output.Write(data);
        }
        return path;
    }

    /// <summary>A torch.save-shaped archive around a hand-written pickle and raw storages.</summary>
    string Craft(string name, byte[] pickle, (string Key, byte[] Data)? storage = null, string? byteorder = null)
    {
        var path = Path.Combine(dir, name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string entry, byte[] data)
        {
            using var s = zip.CreateEntry($"archive/{entry}", CompressionLevel.NoCompression).Open();
            s.Write(data);
        }
        Add("data.pkl", pickle);
        if (byteorder is not null) Add("byteorder", Encoding.ASCII.GetBytes(byteorder));
        if (storage is { } st) Add($"data/{st.Key}", st.Data);
        Add("version", "3\n"u8.ToArray());
        return path;
    }

    static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>Writes pickle opcodes by hand (Lib/pickletools.py numbering), to build archives torch.save would not.</summary>
    sealed class PickleWriter
    {
        readonly List<byte> bytes = [];

        public PickleWriter Op(char op) => Op((byte)op);
        public PickleWriter Op(byte op)
        {
            bytes.Add(op);
            return this;
        }
        public PickleWriter Raw(ReadOnlySpan<byte> data)
        {
            bytes.AddRange(data);
            return this;
        }
        public PickleWriter U32(uint value) => Raw(BitConverter.GetBytes(value));
        public PickleWriter Proto() => Op(0x80).Op(2);
        public PickleWriter Str(string s) => Op('X').U32((uint)Encoding.UTF8.GetByteCount(s)).Raw(Encoding.UTF8.GetBytes(s));
        public PickleWriter Unicode8(string s) => Op(0x8D).Raw(BitConverter.GetBytes((ulong)Encoding.UTF8.GetByteCount(s))).Raw(Encoding.UTF8.GetBytes(s));
        public PickleWriter Global(string module, string name) => Op('c').Raw(Encoding.UTF8.GetBytes($"{module}\n{name}\n"));
        public PickleWriter Float(double value)
        {
            var b = BitConverter.GetBytes(value);
            Array.Reverse(b); // BINFLOAT is big-endian
            return Op('G').Raw(b);
        }
        public PickleWriter Long1(long value) => Op(0x8A).Op(8).Raw(BitConverter.GetBytes(value));
        public PickleWriter Int(long value) => value is >= 0 and < 256 ? Op('K').Op((byte)value)
            : value is >= int.MinValue and <= int.MaxValue ? Op('J').Raw(BitConverter.GetBytes((int)value)) : Long1(value);
        public PickleWriter Tuple(long[] values)
        {
            Op('(');
            foreach (var v in values) Int(v);
            return Op('t');
        }

        /// <summary>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) as torch.save writes it.</summary>
        public PickleWriter Tensor(string storageType, string key, long numel, long offset, long[] size, long[] stride) =>
            Global("torch._utils", "_rebuild_tensor_v2").Op('(')
                .Op('(').Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Op('t').Op('Q')
                .Int(offset).Tuple(size).Tuple(stride).Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R')
                .Op('t').Op('R');

        public byte[] ToArray() => bytes.ToArray();
    }
}
