using System.Buffers.Binary;
using System.Text;

namespace ChainLora.Tests;

/// <summary>
/// An independent reader of TensorBoard event files (TFRecord framing, Event and Summary protobufs),
/// written from the formats' specifications rather than trusting the writer: each record is a
/// little-endian uint64 length, the masked CRC-32C of those 8 bytes, the payload, and the masked
/// CRC-32C of the payload; a scalar is Event{1: wall_time double, 2: step int64, 5: Summary{1: Value{1: tag, 2: simple_value float}}}.
/// </summary>
static class TensorBoardFile
{
    public sealed record Scalar(string Tag, long Step, float Value, double WallTime);

    public sealed record Contents(string? FileVersion, IReadOnlyList<Scalar> Scalars);

    public static Contents Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var scalars = new List<Scalar>();
        string? version = null;
        var at = 0;
        while (at < bytes.Length)
        {
            Assert.True(at + 12 <= bytes.Length, $"{path}: a record header cut at byte {at}");
            var length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at, 8));
            Assert.Equal(MaskedCrc(bytes.AsSpan(at, 8)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8, 4)));
            var payload = bytes.AsSpan(at + 12, (int)length);
            Assert.Equal(MaskedCrc(payload), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length, 4)));
            at += 12 + (int)length + 4;

            double wall = 0;
            long step = 0;
            var values = new List<(string Tag, float Value)>();
            foreach (var (field, wire, value, data) in Fields(payload.ToArray()))
                switch (field)
                {
                    case 1 when wire == 1: wall = BitConverter.Int64BitsToDouble((long)value); break;
                    case 2 when wire == 0: step = (long)value; break;
                    case 3 when wire == 2: version = Encoding.UTF8.GetString(data!); break;
                    case 5 when wire == 2:
                        foreach (var v in Fields(data!).Where(f => f.Field == 1))
                        {
                            string? tag = null;
                            float simple = float.NaN;
                            foreach (var (f, w, x, d) in Fields(v.Data!))
                                if (f == 1 && w == 2) tag = Encoding.UTF8.GetString(d!);
                                else if (f == 2 && w == 5) simple = BitConverter.Int32BitsToSingle((int)x);
                            values.Add((tag!, simple));
                        }
                        break;
                }
            scalars.AddRange(values.Select(v => new Scalar(v.Tag, step, v.Value, wall)));
        }
        return new Contents(version, scalars);
    }

    /// <summary>Protobuf fields: number, wire type, the varint / fixed value, or the bytes of a length-delimited one.</summary>
    static IEnumerable<(int Field, int Wire, ulong Value, byte[]? Data)> Fields(byte[] message)
    {
        var at = 0;
        ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = message[at++];
                result |= (ulong)(b & 0x7f) << shift;
                if ((b & 0x80) == 0) return result;
            }
        }
        while (at < message.Length)
        {
            var key = Varint();
            var (field, wire) = ((int)(key >> 3), (int)(key & 7));
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(), null); break;
                case 1: yield return (field, wire, BinaryPrimitives.ReadUInt64LittleEndian(message.AsSpan(at, 8)), null); at += 8; break;
                case 5: yield return (field, wire, BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(at, 4)), null); at += 4; break;
                case 2:
                    var length = (int)Varint();
                    yield return (field, wire, 0, message[at..(at + length)]);
                    at += length;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
    }

    static readonly uint[] Table = Enumerable.Range(0, 256).Select(i =>
    {
        var c = (uint)i;
        for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>CRC-32C (Castagnoli), rotated right by 15 bits plus 0xa282ead8, as TFRecord masks it.</summary>
    public static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = Table[(crc ^ b) & 0xff] ^ (crc >> 8);
        crc ^= 0xFFFFFFFFu;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }
}
