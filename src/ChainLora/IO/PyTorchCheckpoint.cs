// Reads one torch.save checkpoint (pytorch_model.bin or one shard of it) in the zip format PyTorch
// writes since 1.6 (torch/serialization.py _save; caffe2/serialize/inline_container.h): entries
// <archive>/data.pkl (the pickled state dict), <archive>/data/<key> (each storage's raw little-endian
// bytes), maybe <archive>/byteorder, and <archive>/version. The pickle is read by StateDictUnpickler,
// which runs no code. Tensor bytes are read one tensor at a time, straight from the stored entry into
// native tensor memory, then viewed with the saved strides, so views and tied weights read as saved.
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using ChainLora.Runtime;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace ChainLora.IO;

/// <summary>A <c>pytorch_model.bin</c> as an <see cref="ITensorSource"/>; the pickle is read without executing it.</summary>
public sealed class PyTorchCheckpoint : ITensorSource
{
    // data.pkl of a multi-billion-parameter state dict is a few MB; this bounds a hostile one.
    const long MaxPickleBytes = 64L << 20;

    /// <summary>A zip entry located in the file; <see cref="DataOffset"/> is its first data byte.</summary>
    sealed record StoredEntry(ZipEntry Zip, long DataOffset);

    /// <summary>A tensor's view and the entry holding its storage; tied tensors share one entry.</summary>
    sealed record TensorEntry(PickledTensor Tensor, StoredEntry Storage);

    readonly SafeFileHandle handle;
    readonly Dictionary<string, TensorEntry> entries;

    public string Source { get; }
    public IReadOnlyDictionary<string, StoredTensor> Tensors { get; }

    PyTorchCheckpoint(string path, SafeFileHandle handle, Dictionary<string, TensorEntry> entries)
    {
        Source = path;
        this.handle = handle;
        this.entries = entries;
        Tensors = entries.ToDictionary(kv => kv.Key, kv => new StoredTensor(kv.Key, kv.Value.Tensor.Storage.DType, kv.Value.Tensor.Size),
            StringComparer.Ordinal);
    }

    /// <summary>
    /// Opens <paramref name="path"/>, reads its zip directory and pickle, and checks that every tensor's
    /// storage entry exists and holds the tensor's extent. No tensor data is read.
    /// </summary>
    public static PyTorchCheckpoint Open(string path)
    {
        NativeRuntime.Ensure();
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            return new PyTorchCheckpoint(path, handle, ReadIndex(path, handle));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies tensor <paramref name="name"/> into <paramref name="destination"/> (the stored shape; any dtype,
    /// any device). Only the storage region the tensor spans is read: straight into a contiguous CPU destination
    /// of the stored dtype when the tensor is contiguous, else into a CPU temporary that is then viewed with the
    /// saved strides and copied (copy_ converts dtype and device).
    /// </summary>
    public void CopyTo(string name, Tensor destination)
    {
        if (!entries.TryGetValue(name, out var entry))
            throw new KeyNotFoundException($"{Source}: no tensor '{name}'");
        var (tensor, storage) = entry;
        if (!destination.shape.SequenceEqual(tensor.Size))
            throw new ArgumentException($"{Source}: tensor '{name}' has shape [{string.Join(", ", tensor.Size)}], " +
                $"the destination [{string.Join(", ", destination.shape)}]", nameof(destination));
        var (first, count) = Extent(tensor);
        if (count == 0) return;

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        // The common case (a contiguous tensor into a CPU tensor of its dtype) needs no temporary.
        if (tensor.Storage.DType != ScalarType.Bool && destination.dtype == tensor.Storage.DType
            && destination.device_type == DeviceType.CPU && destination.is_contiguous() && IsContiguous(tensor))
        {
            Read(storage, first, destination);
            return;
        }
        // Bool storages are read as bytes and compared with zero, so any nonzero byte becomes a canonical true.
        var dtype = tensor.Storage.DType == ScalarType.Bool ? ScalarType.Byte : tensor.Storage.DType;
        var region = torch.empty([count], dtype, torch.CPU);
        Read(storage, first, region);
        var view = region.as_strided(tensor.Size, tensor.Stride, 0);
        destination.copy_(tensor.Storage.DType == ScalarType.Bool ? view.ne(0) : view);
    }

    /// <summary>Fills contiguous CPU <paramref name="target"/> with the storage's elements from <paramref name="first"/> on.</summary>
    void Read(StoredEntry storage, long first, Tensor target)
    {
        var start = first * target.element_size();
        if (storage.Zip.Method == ZipDirectory.Stored)
            SafeTensors.ForEachChunk(target, (chunk, at) => SafeTensors.ReadExactly(Source, handle, chunk, storage.DataOffset + start + at));
        else
            ReadInflated(storage, start, target);
    }

    public void Dispose() => handle.Dispose();

    static Dictionary<string, TensorEntry> ReadIndex(string path, SafeFileHandle handle)
    {
        CheckIsZip(path, handle);
        var entries = ZipDirectory.ReadEntries(path, handle);
        // As torch's reader does: the folder of the first entry is the archive's; its name varies
        // ("archive" when saved to a stream, else the file stem at save time).
        var archive = entries.Count > 0 && entries[0].Name.IndexOf('/') is var slash and > 0
            ? entries[0].Name[..(slash + 1)]
            : throw new InvalidDataException($"{path}: the first zip entry is not inside a folder; not a torch.save archive");
        var byName = new Dictionary<string, ZipEntry>(StringComparer.Ordinal);
        foreach (var entry in entries.Where(e => e.Name.StartsWith(archive, StringComparison.Ordinal)))
            if (!byName.TryAdd(entry.Name[archive.Length..], entry))
                throw new InvalidDataException($"{path}: zip entry '{entry.Name}' appears twice");

        if (byName.TryGetValue("byteorder", out var byteorder))
        {
            var order = Encoding.ASCII.GetString(ReadSmall(path, handle, byteorder, 16)).Trim();
            if (order != "little")
                throw new InvalidDataException($"{path}: byteorder is '{order}'; only little-endian checkpoints are read " +
                    "(load it on a little-endian machine and torch.save it again)");
        }

        var pickleName = archive + "data.pkl";
        if (!byName.TryGetValue("data.pkl", out var pickleEntry))
            throw new InvalidDataException($"{path}: zip entry '{pickleName}' is missing; not a torch.save archive");
        var pickle = ReadSmall(path, handle, pickleEntry, MaxPickleBytes);
        var storages = new Dictionary<string, StoredEntry>(StringComparer.Ordinal);
        var tensors = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        foreach (var (name, tensor) in StateDictUnpickler.ReadTensors($"{path} ({pickleName})", pickle))
        {
            var key = tensor.Storage.Key;
            if (!storages.TryGetValue(key, out var storage))
            {
                if (!byName.TryGetValue($"data/{key}", out var zip))
                    throw new InvalidDataException($"{path}: tensor '{name}': its storage entry '{archive}data/{key}' is missing");
                storages[key] = storage = new StoredEntry(zip, Locate(path, handle, zip));
            }
            Validate(path, name, tensor, storage.Zip);
            tensors[name] = new TensorEntry(tensor, storage);
        }
        return tensors;
    }

    static void CheckIsZip(string path, SafeFileHandle handle)
    {
        var head = new byte[4];
        var read = RandomAccess.Read(handle, head, 0);
        if (read == 4 && BitConverter.ToUInt32(head) == ZipDirectory.LocalSignature) return;
        // The legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False) is a bare
        // pickle stream, which starts with the PROTO opcode.
        if (read >= 2 && head[0] == 0x80)
            throw new InvalidDataException($"{path}: this is the legacy (pre-1.6) torch.save format, which is not read here; " +
                "re-save it in PyTorch >= 1.6 with torch.save(torch.load(path), path, _use_new_zipfile_serialization=True)");
        throw new InvalidDataException(read == 0 ? $"{path}: the file is empty, not a torch.save zip archive"
            : $"{path}: not a torch.save zip archive (it starts with bytes {Convert.ToHexString(head, 0, read)})");
    }

    static long Locate(string path, SafeFileHandle handle, ZipEntry zip)
    {
        if (zip.Method is not (ZipDirectory.Stored or ZipDirectory.Deflated))
            throw new InvalidDataException($"{path}: zip entry '{zip.Name}' uses compression method {zip.Method}; only stored (0) and deflated (8) are read");
        if (zip.Method == ZipDirectory.Stored && zip.CompressedSize != zip.Size)
            throw new InvalidDataException($"{path}: zip entry '{zip.Name}' is stored but its sizes differ ({zip.CompressedSize} and {zip.Size})");
        return ZipDirectory.DataOffset(path, handle, zip);
    }

    /// <summary>The whole of a small entry (data.pkl, byteorder), refused when larger than <paramref name="limit"/>.</summary>
    static byte[] ReadSmall(string path, SafeFileHandle handle, ZipEntry zip, long limit)
    {
        if (zip.Size > limit)
            throw new InvalidDataException($"{path}: zip entry '{zip.Name}' is {zip.Size} bytes, more than the {limit} expected");
        var entry = new StoredEntry(zip, Locate(path, handle, zip));
        var bytes = new byte[zip.Size];
        if (zip.Method == ZipDirectory.Stored) SafeTensors.ReadExactly(path, handle, bytes, entry.DataOffset);
        else
        {
            using var inflated = Inflate(path, entry);
            ReadStream(path, zip, inflated, bytes);
        }
        return bytes;
    }

    /// <summary>
    /// Checks that the view (offset, size, stride) lies inside the storage entry's elements. The tensor
    /// spans elements [offset, offset + 1 + sum((size_i - 1) * stride_i)) when it has any element.
    /// </summary>
    static void Validate(string path, string name, PickledTensor t, ZipEntry storage)
    {
        string Shape() => $"size [{string.Join(", ", t.Size)}], stride [{string.Join(", ", t.Stride)}], storage offset {t.Offset}";
        if (t.Size.Length != t.Stride.Length)
            throw new InvalidDataException($"{path}: tensor '{name}': {Shape()} has {t.Size.Length} sizes and {t.Stride.Length} strides");
        if (t.Size.Any(s => s < 0) || t.Stride.Any(s => s < 0) || t.Offset < 0)
            throw new InvalidDataException($"{path}: tensor '{name}': {Shape()} holds a negative number");
        var elementSize = ElementSize(t.Storage.DType);
        var capacity = storage.Size / elementSize;
        long end;
        try
        {
            var (first, count) = Extent(t);
            end = checked(first + count);
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{path}: tensor '{name}': {Shape()} overflows a 64-bit element count");
        }
        if (end > capacity)
            throw new InvalidDataException($"{path}: tensor '{name}': {Shape()} reaches element {end}, past the {capacity} " +
                $"{t.Storage.DType} elements of storage entry '{storage.Name}' ({storage.Size} bytes)");
        // A stored entry's span is bounded by the file's own bytes; a deflated one only by the size it
        // claims, so a sparse view (a huge stride over few elements) over a deflate bomb would make
        // CopyTo inflate gigabytes for a handful of values. torch.save never deflates: allow only
        // views that are mostly their own elements there.
        var (_, spanned) = Extent(t);
        var elements = t.Size.Aggregate(1L, (n, d) => n * d);
        if (storage.Method == ZipDirectory.Deflated && spanned > 2 * elements + 64)
            throw new InvalidDataException($"{path}: tensor '{name}': {Shape()} spans {spanned} elements for {elements} values " +
                $"of the compressed storage entry '{storage.Name}'; only compact views of compressed entries are read");
    }

    /// <summary>First storage element and element count of the region the view spans; (0, 0) when it is empty.</summary>
    static (long First, long Count) Extent(PickledTensor t)
    {
        if (t.Size.Any(s => s == 0)) return (0, 0);
        var count = 1L;
        for (var i = 0; i < t.Size.Length; i++) count = checked(count + checked((t.Size[i] - 1) * t.Stride[i]));
        return (t.Offset, count);
    }

    /// <summary>Row-major strides for the size (a dimension of size 1 may have any stride), as torch's is_contiguous.</summary>
    static bool IsContiguous(PickledTensor t)
    {
        var expected = 1L;
        for (var i = t.Size.Length - 1; i >= 0; i--)
        {
            if (t.Size[i] == 1) continue;
            if (t.Stride[i] != expected) return false;
            expected *= t.Size[i];
        }
        return true;
    }

    /// <summary>Bytes per element of the storage dtypes StateDictUnpickler admits.</summary>
    static int ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new UnreachableException($"storage dtype {type} is not one StateDictUnpickler admits"),
    };

    /// <summary>
    /// The slow path for a deflated entry (torch.save never writes one; a re-zipped checkpoint may have it):
    /// inflate from the entry's start, skip to the region, then read it.
    /// </summary>
    void ReadInflated(StoredEntry storage, long skip, Tensor region)
    {
        using var inflated = Inflate(Source, storage);
        var scratch = new byte[Math.Min(skip, 1 << 20)];
        for (var left = skip; left > 0;)
        {
            var n = (int)Math.Min(left, scratch.Length);
            ReadStream(Source, storage.Zip, inflated, scratch.AsSpan(0, n));
            left -= n;
        }
        SafeTensors.ForEachChunk(region, (chunk, _) => ReadStream(Source, storage.Zip, inflated, chunk));
    }

    static DeflateStream Inflate(string path, StoredEntry entry)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        file.Position = entry.DataOffset;
        return new DeflateStream(file, CompressionMode.Decompress, leaveOpen: false);
    }

    static void ReadStream(string path, ZipEntry zip, Stream stream, Span<byte> buffer)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: zip entry '{zip.Name}' does not inflate to its {zip.Size} bytes ({e.Message})", e);
        }
    }
}
