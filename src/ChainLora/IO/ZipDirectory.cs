// Reads a zip archive's central directory (PKWARE APPNOTE.TXT 4.3.12 central file header, 4.3.14-4.3.16
// end records, 4.5.3 ZIP64 extended information) and finds each entry's data through its local header
// (4.3.7), so a stored entry can be read in place with RandomAccess. torch.save's writer (miniz, in
// caffe2/serialize/inline_container.cc) stores entries uncompressed and 64-byte aligned, puts sizes only
// in the central directory (flag bit 3: the local header says 0) and always writes the ZIP64 end records.
using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace ChainLora.IO;

/// <summary>One central-directory entry, ZIP64 fields resolved; sizes and offsets in bytes.</summary>
internal sealed record ZipEntry(string Name, ushort Method, long CompressedSize, long Size, long LocalHeaderOffset);

internal static class ZipDirectory
{
    public const ushort Stored = 0, Deflated = 8;
    public const uint LocalSignature = 0x04034b50;
    const uint EndSignature = 0x06054b50, Zip64LocatorSignature = 0x07064b50, Zip64EndSignature = 0x06064b50,
        CentralSignature = 0x02014b50;
    const int EndSize = 22, Zip64LocatorSize = 20, Zip64EndSize = 56, CentralSize = 46, LocalSize = 30;
    const ushort Zip64ExtraId = 0x0001;
    // A torch checkpoint has a few entries per tensor (~100 bytes each); this bounds a hostile directory.
    const long MaxDirectoryBytes = 256L << 20;
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Every entry, in central-directory order.</summary>
    public static List<ZipEntry> ReadEntries(string path, SafeFileHandle handle)
    {
        var fileLength = RandomAccess.GetLength(handle);
        // The end record is the last 22 bytes plus a comment of at most 65535 bytes.
        var tail = new byte[(int)Math.Min(fileLength, EndSize + ushort.MaxValue)];
        var tailStart = fileLength - tail.Length;
        SafeTensors.ReadExactly(path, handle, tail, tailStart);
        var end = -1;
        for (var i = tail.Length - EndSize; i >= 0 && end < 0; i--)
            if (U32(tail, i) == EndSignature && i + EndSize + U16(tail, i + 20) == tail.Length)
                end = i;
        if (end < 0)
            throw Bad(path, $"no zip end-of-central-directory record in its last {tail.Length} bytes: the file is truncated or not a zip archive");

        long count = U16(tail, end + 10), directorySize = U32(tail, end + 12), directoryOffset = U32(tail, end + 16);
        var endOffset = tailStart + end;
        if (endOffset >= Zip64LocatorSize + Zip64EndSize)
        {
            var locator = new byte[Zip64LocatorSize];
            SafeTensors.ReadExactly(path, handle, locator, endOffset - Zip64LocatorSize);
            if (U32(locator, 0) == Zip64LocatorSignature)
            {
                var zip64EndOffset = Checked(path, "ZIP64 end record offset", U64(locator, 8), endOffset - Zip64LocatorSize - Zip64EndSize);
                var record = new byte[Zip64EndSize];
                SafeTensors.ReadExactly(path, handle, record, zip64EndOffset);
                if (U32(record, 0) != Zip64EndSignature)
                    throw Bad(path, $"the ZIP64 locator points at byte {zip64EndOffset}, which holds no ZIP64 end record");
                count = Checked(path, "ZIP64 entry count", U64(record, 32), long.MaxValue);
                directorySize = Checked(path, "ZIP64 central directory size", U64(record, 40), MaxDirectoryBytes);
                directoryOffset = Checked(path, "ZIP64 central directory offset", U64(record, 48), fileLength);
            }
        }
        if (directorySize > MaxDirectoryBytes || directoryOffset + directorySize > endOffset)
            throw Bad(path, $"central directory [{directoryOffset}, +{directorySize}) does not fit before the end record at byte {endOffset}");

        var directory = new byte[directorySize];
        SafeTensors.ReadExactly(path, handle, directory, directoryOffset);
        var entries = new List<ZipEntry>();
        var at = 0;
        for (long n = 0; n < count; n++)
        {
            if (at + CentralSize > directory.Length || U32(directory, at) != CentralSignature)
                throw Bad(path, $"central directory entry {n} of {count} at byte {directoryOffset + at} is malformed or missing");
            var (nameLength, extraLength, commentLength) = (U16(directory, at + 28), U16(directory, at + 30), U16(directory, at + 32));
            var next = at + CentralSize + nameLength + extraLength + commentLength;
            if (next > directory.Length)
                throw Bad(path, $"central directory entry {n} at byte {directoryOffset + at} runs past the directory's end");
            string name;
            try
            {
                name = StrictUtf8.GetString(directory, at + CentralSize, nameLength);
            }
            catch (DecoderFallbackException e)
            {
                throw Bad(path, $"central directory entry {n} at byte {directoryOffset + at} has a name that is not UTF-8", e);
            }
            if ((U16(directory, at + 8) & 1) != 0)
                throw Bad(path, $"zip entry '{name}' is encrypted; torch.save never encrypts");
            var extra = directory.AsSpan(at + CentralSize + nameLength, extraLength);
            var (size, compressed, offset) = Zip64Fields(path, name, extra, U32(directory, at + 24), U32(directory, at + 20), U32(directory, at + 42));
            entries.Add(new ZipEntry(name, U16(directory, at + 10), compressed, size, offset));
            at = next;
        }
        return entries;
    }

    /// <summary>File offset of <paramref name="entry"/>'s first data byte, checked to leave room for its data.</summary>
    public static long DataOffset(string path, SafeFileHandle handle, ZipEntry entry)
    {
        var fileLength = RandomAccess.GetLength(handle);
        if (entry.LocalHeaderOffset > fileLength - LocalSize)
            throw Bad(path, $"zip entry '{entry.Name}': local header at byte {entry.LocalHeaderOffset} lies past the end of the {fileLength}-byte file");
        var header = new byte[LocalSize];
        SafeTensors.ReadExactly(path, handle, header, entry.LocalHeaderOffset);
        if (U32(header, 0) != LocalSignature)
            throw Bad(path, $"zip entry '{entry.Name}': no local header signature at byte {entry.LocalHeaderOffset}");
        var dataOffset = entry.LocalHeaderOffset + LocalSize + U16(header, 26) + U16(header, 28);
        if (entry.CompressedSize > fileLength - dataOffset)
            throw Bad(path, $"zip entry '{entry.Name}': {entry.CompressedSize} bytes at byte {dataOffset} run past the end of " +
                $"the {fileLength}-byte file; was it truncated?");
        return dataOffset;
    }

    /// <summary>
    /// Sizes and local header offset; a 32-bit field of 0xFFFFFFFF means the real value is in the ZIP64
    /// extra field, which lists only those fields, in the order uncompressed, compressed, offset.
    /// </summary>
    static (long Size, long Compressed, long Offset) Zip64Fields(string path, string name, ReadOnlySpan<byte> extra, uint size, uint compressed, uint offset)
    {
        ulong[] values = [size, compressed, offset];
        if (values.Any(v => v == uint.MaxValue))
        {
            var data = FindExtra(extra, Zip64ExtraId);
            var read = 0;
            for (var i = 0; i < values.Length; i++)
            {
                if (values[i] != uint.MaxValue) continue;
                if (data.Length < read + 8)
                    throw Bad(path, $"zip entry '{name}': its ZIP64 extra field is missing or too short for the 64-bit sizes it needs");
                values[i] = BinaryPrimitives.ReadUInt64LittleEndian(data[read..]);
                read += 8;
            }
        }
        return (Checked(path, $"entry '{name}' size", values[0], long.MaxValue),
            Checked(path, $"entry '{name}' compressed size", values[1], long.MaxValue),
            Checked(path, $"entry '{name}' local header offset", values[2], long.MaxValue));
    }

    static ReadOnlySpan<byte> FindExtra(ReadOnlySpan<byte> extra, ushort id)
    {
        while (extra.Length >= 4)
        {
            var (fieldId, length) = (BinaryPrimitives.ReadUInt16LittleEndian(extra), BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]));
            if (4 + length > extra.Length) break;
            if (fieldId == id) return extra.Slice(4, length);
            extra = extra[(4 + length)..];
        }
        return [];
    }

    static long Checked(string path, string field, ulong value, long max) =>
        value <= (ulong)max ? (long)value : throw Bad(path, $"zip {field} {value} exceeds {max}");

    static ushort U16(byte[] b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at));
    static uint U32(byte[] b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at));
    static ulong U64(byte[] b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at));

    static InvalidDataException Bad(string path, string message, Exception? inner = null) => new($"{path}: {message}", inner);
}
