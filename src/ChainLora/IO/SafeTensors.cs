// Reader and writer for the safetensors format (huggingface/safetensors, "Format" in its README):
// an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// {"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}},
// then the raw little-endian tensor bytes, with offsets counted from the first byte after the header.
// Sharded checkpoints follow transformers' model-0000i-of-0000N.safetensors + index.json layout.
using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using ChainLora.Runtime;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.IO;

/// <summary>One header entry; <see cref="Begin"/> and <see cref="End"/> are offsets into the data region.</summary>
public sealed record SafeTensorInfo(string Name, string DType, ScalarType ScalarType, IReadOnlyList<long> Shape, long Begin, long End);

/// <summary>A validated safetensors header: string metadata and the tensor index, no tensor data.</summary>
/// <param name="DataStart">File offset of the data region (8 + header length).</param>
public sealed record SafeTensorsFile(
    string Path, long DataStart, IReadOnlyDictionary<string, string> Metadata, IReadOnlyDictionary<string, SafeTensorInfo> Tensors);

/// <summary>Loads and saves <c>.safetensors</c> files and Hugging Face sharded checkpoints.</summary>
public static partial class SafeTensors
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";
    const string MetadataKey = "__metadata__";
    const long MaxHeaderBytes = 100_000_000; // the reference implementation's limit
    // Tensor bytes move through spans over native memory; a span holds at most int.MaxValue bytes.
    const long ChunkBytes = 1L << 30;

    static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2), ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4), ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };
    static readonly Dictionary<ScalarType, string> DTypeNames = DTypes.ToDictionary(kv => kv.Value.Type, kv => kv.Key);
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    [GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial Regex ShardFileName();

    /// <summary>Reads all tensors of one file into tensors of their own, cast and placed on the way.</summary>
    /// <returns>Tensors with the file's shapes, dtype <paramref name="castTo"/> or the file's, on <paramref name="device"/> or CPU.</returns>
    public static Dictionary<string, Tensor> Load(string path, Device? device = null, ScalarType? castTo = null)
    {
        using var source = SafeTensorsSource.Open(path);
        return ReadAll(source, device, castTo);
    }

    /// <summary>Reads and validates only the header of <paramref name="path"/>.</summary>
    public static SafeTensorsFile ReadHeader(string path)
    {
        using var handle = File.OpenHandle(path);
        return ReadHeader(path, handle);
    }

    /// <summary>
    /// Loads <c>model.safetensors.index.json</c> and its shards when the index exists, else <c>model.safetensors</c>.
    /// Every shard header is checked against the index's weight_map before any tensor data is read.
    /// </summary>
    public static Dictionary<string, Tensor> LoadModelWeights(string modelDir, Device? device = null, ScalarType? castTo = null)
    {
        var indexPath = Path.Combine(modelDir, IndexFileName);
        if (File.Exists(indexPath)) return LoadSharded(indexPath, device, castTo);
        var single = Path.Combine(modelDir, SingleFileName);
        if (File.Exists(single)) return Load(single, device, castTo);
        throw new FileNotFoundException($"{modelDir}: no weights, neither {IndexFileName} nor {SingleFileName} exists", single);
    }

    /// <summary>
    /// Writes tensors (any device, any layout; copied to CPU contiguous) in ordinal key order with contiguous
    /// offsets. The file is written beside <paramref name="path"/> and renamed over it, so an existing file
    /// is replaced whole or not at all.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        NativeRuntime.Ensure();
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        var header = Header(path, names, tensors, metadata);
        AtomicFile.Write(path, stream =>
        {
            var prefix = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            foreach (var name in names)
            {
                using var scope = torch.NewDisposeScope();
                var cpu = tensors[name].detach().cpu().contiguous();
                ForEachChunk(cpu, (chunk, _) => stream.Write(chunk));
            }
        });
    }

    /// <summary>
    /// Writes <c>model.safetensors</c> when the tensor bytes total at most <paramref name="maxShardBytes"/>, else
    /// shards filled greedily in key order (a tensor larger than the limit gets a shard of its own) plus the
    /// index, as transformers' save_pretrained does. Weight files of an earlier save in the folder are removed.
    /// <paramref name="cancel"/> is checked before each shard, so a stopped save ends within one shard's write.
    /// </summary>
    public static void SaveSharded(string dir, IReadOnlyDictionary<string, Tensor> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancel = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        Directory.CreateDirectory(dir);
        var shards = new List<List<string>>();
        long shardBytes = 0, totalBytes = 0;
        foreach (var name in tensors.Keys.Order(StringComparer.Ordinal))
        {
            var bytes = tensors[name].numel() * tensors[name].element_size();
            if (shards.Count == 0 || (shardBytes > 0 && shardBytes + bytes > maxShardBytes))
            {
                shards.Add([]);
                shardBytes = 0;
            }
            shards[^1].Add(name);
            shardBytes += bytes;
            totalBytes += bytes;
        }

        var indexPath = Path.Combine(dir, IndexFileName);
        if (shards.Count <= 1)
        {
            cancel.ThrowIfCancellationRequested();
            Save(Path.Combine(dir, SingleFileName), tensors, metadata);
            File.Delete(indexPath); // a stale index would take precedence on load
            RemoveStaleShards(dir, keep: []);
            return;
        }

        var fileNames = shards.Select((_, i) => $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors").ToArray();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < shards.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            Save(Path.Combine(dir, fileNames[i]), shards[i].ToDictionary(n => n, n => tensors[n]), metadata);
            foreach (var name in shards[i]) weightMap[name] = fileNames[i];
            FaultInjection.Point("shard", cancel);
        }
        cancel.ThrowIfCancellationRequested();
        WriteIndex(indexPath, totalBytes, weightMap);
        File.Delete(Path.Combine(dir, SingleFileName));
        RemoveStaleShards(dir, keep: fileNames);
    }

    internal static SafeTensorsFile ReadHeader(string path, SafeFileHandle handle)
    {
        var fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
            throw Bad(path, $"file is {fileLength} bytes, too short for the 8-byte header length");
        var prefix = new byte[8];
        ReadExactly(path, handle, prefix, 0);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw Bad(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        var dataStart = 8 + (long)headerLength;
        if (dataStart > fileLength)
            throw Bad(path, $"header length {headerLength} runs past the end of the {fileLength}-byte file");
        var header = new byte[headerLength];
        ReadExactly(path, handle, header, 8);
        return ParseHeader(path, header, dataStart, fileLength - dataStart);
    }

    static SafeTensorsFile ParseHeader(string path, byte[] header, long dataStart, long dataLength)
    {
        JsonDocument doc;
        try
        {
            StrictUtf8.GetCharCount(header);
            doc = JsonDocument.Parse(header);
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException)
        {
            throw Bad(path, $"header is not valid UTF-8 JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Bad(path, $"header is a JSON {doc.RootElement.ValueKind}, not an object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == MetadataKey)
                    metadata = ParseMetadata(path, entry.Value);
                else if (!tensors.TryAdd(entry.Name, ParseEntry(path, entry.Name, entry.Value, dataLength)))
                    throw Bad(path, $"tensor '{entry.Name}' appears twice in the header");
            }
            CheckNoOverlap(path, tensors.Values);
            return new SafeTensorsFile(path, dataStart, metadata, tensors);
        }
    }

    static Dictionary<string, string> ParseMetadata(string path, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(path, $"{MetadataKey} is a JSON {value.ValueKind}, not an object of strings");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw Bad(path, $"{MetadataKey} field '{p.Name}' is a JSON {p.Value.ValueKind}, not a string");
            metadata[p.Name] = p.Value.GetString()!;
        }
        return metadata;
    }

    static SafeTensorInfo ParseEntry(string path, string name, JsonElement entry, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw Bad(path, $"tensor '{name}': entry is a JSON {entry.ValueKind}, not an object");
        var dtype = Field(path, name, entry, "dtype", JsonValueKind.String).GetString()!;
        if (!DTypes.TryGetValue(dtype, out var type))
            throw Bad(path, $"tensor '{name}': unknown dtype '{dtype}' (supported: {string.Join(", ", DTypes.Keys)})");
        var shape = Longs(path, name, entry, "shape");
        var offsets = Longs(path, name, entry, "data_offsets");
        if (offsets.Length != 2)
            throw Bad(path, $"tensor '{name}': data_offsets has {offsets.Length} numbers, expected [begin, end]");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin > end)
            throw Bad(path, $"tensor '{name}': data_offsets [{begin}, {end}] has begin after end");
        if (end > dataLength)
            throw Bad(path, $"tensor '{name}': data_offsets [{begin}, {end}] lie outside the {dataLength}-byte data region");
        long needed;
        try
        {
            needed = checked(shape.Aggregate(1L, (n, d) => checked(n * d)) * type.Size);
        }
        catch (OverflowException)
        {
            throw Bad(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] overflows a 64-bit byte count");
        }
        if (needed != end - begin)
            throw Bad(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] of {dtype} needs {needed} bytes, " +
                $"but data_offsets [{begin}, {end}] hold {end - begin}");
        return new SafeTensorInfo(name, dtype, type.Type, shape, begin, end);
    }

    static JsonElement Field(string path, string name, JsonElement entry, string field, JsonValueKind kind)
    {
        if (!entry.TryGetProperty(field, out var value))
            throw Bad(path, $"tensor '{name}': field '{field}' is missing");
        if (value.ValueKind != kind)
            throw Bad(path, $"tensor '{name}': field '{field}' is a JSON {value.ValueKind}, expected {kind}");
        return value;
    }

    static long[] Longs(string path, string name, JsonElement entry, string field) =>
        Field(path, name, entry, field, JsonValueKind.Array).EnumerateArray()
            .Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= 0
                ? n
                : throw Bad(path, $"tensor '{name}': field '{field}' holds {v.GetRawText()}, expected a non-negative integer"))
            .ToArray();

    static void CheckNoOverlap(string path, IEnumerable<SafeTensorInfo> tensors)
    {
        SafeTensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.End > t.Begin).OrderBy(t => t.Begin))
        {
            if (previous is not null && t.Begin < previous.End)
                throw Bad(path, $"tensors '{previous.Name}' [{previous.Begin}, {previous.End}] and '{t.Name}' [{t.Begin}, {t.End}] overlap");
            if (previous is null || t.End > previous.End) previous = t;
        }
    }

    internal delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>Visits the bytes of a contiguous CPU tensor as spans over its own memory, in order.</summary>
    internal static void ForEachChunk(Tensor tensor, ChunkAction action)
    {
        var count = tensor.numel();
        if (count == 0) return;
        var elementSize = tensor.element_size();
        var perChunk = ChunkBytes / elementSize;
        using var flat = tensor.view(-1);
        for (long start = 0; start < count; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, count - start));
            action(part.bytes, start * elementSize);
        }
    }

    internal static void ReadExactly(string path, SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        while (!buffer.IsEmpty)
        {
            var read = RandomAccess.Read(handle, buffer, offset);
            if (read == 0) throw Bad(path, $"file ended at byte {offset} while reading; was it truncated while open?");
            buffer = buffer[read..];
            offset += read;
        }
    }

    static byte[] Header(string path, string[] names, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(key, value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                if (name == MetadataKey) throw new ArgumentException($"{path}: '{MetadataKey}' is reserved, not a tensor name", nameof(tensors));
                var t = tensors[name];
                if (!DTypeNames.TryGetValue(t.dtype, out var dtype))
                    throw new ArgumentException($"{path}: tensor '{name}' has dtype {t.dtype}, which safetensors I/O here does not support", nameof(tensors));
                var bytes = t.numel() * t.element_size();
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data region starts 8-byte aligned, as the reference writer does.
        var header = new byte[(json.WrittenCount + 7) / 8 * 8];
        header.AsSpan().Fill((byte)' ');
        json.WrittenSpan.CopyTo(header);
        return header;
    }

    /// <summary>Every tensor of a sharded checkpoint, checked against its index by <see cref="ShardedTensorSource"/> first.</summary>
    static Dictionary<string, Tensor> LoadSharded(string indexPath, Device? device, ScalarType? castTo)
    {
        using var source = ShardedTensorSource.Open(indexPath, SafeTensorsSource.Open);
        return ReadAll(source, device, castTo);
    }

    /// <summary>Each tensor of <paramref name="source"/> into a new tensor of <paramref name="castTo"/> (or its stored dtype).</summary>
    static Dictionary<string, Tensor> ReadAll(ITensorSource source, Device? device, ScalarType? castTo)
    {
        var tensors = new Dictionary<string, Tensor>(source.Tensors.Count, StringComparer.Ordinal);
        try
        {
            foreach (var (name, stored) in source.Tensors)
            {
                var tensor = torch.empty(stored.Shape.ToArray(), castTo ?? stored.DType, device ?? torch.CPU);
                tensors.Add(name, tensor);
                source.CopyTo(name, tensor);
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return tensors;
    }

    internal static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            // Strings are only decoded when read; invalid UTF-8 in a name would surface later as .NET's own error.
            doc = JsonDocument.Parse(StrictUtf8.GetString(File.ReadAllBytes(indexPath)));
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException)
        {
            throw new InvalidDataException($"{indexPath}: not valid UTF-8 JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath}: field 'weight_map' is missing or not an object");
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                // Shards live beside the index; a path elsewhere is a malformed (or hostile) index.
                if (p.Value.ValueKind != JsonValueKind.String || p.Value.GetString() is not { Length: > 0 } shard
                    || Path.GetFileName(shard) != shard)
                    throw new InvalidDataException($"{indexPath}: weight_map entry '{p.Name}' is {p.Value.GetRawText()}, expected a shard file name");
                weightMap[p.Name] = shard;
            }
            return weightMap;
        }
    }

    static void WriteIndex(string indexPath, long totalBytes, IReadOnlyDictionary<string, string> weightMap)
    {
        AtomicFile.Write(indexPath, stream =>
        {
            using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, IndentSize = 2 });
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", totalBytes);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var (name, shard) in weightMap) w.WriteString(name, shard);
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    static void RemoveStaleShards(string dir, IReadOnlyCollection<string> keep)
    {
        foreach (var file in Directory.EnumerateFiles(dir, "model-*-of-*.safetensors"))
            if (ShardFileName().IsMatch(Path.GetFileName(file)) && !keep.Contains(Path.GetFileName(file)))
                File.Delete(file);
    }

    static InvalidDataException Bad(string path, string message, Exception? inner = null) => new($"{path}: {message}", inner);
}
