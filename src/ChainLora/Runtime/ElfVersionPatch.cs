// ELF64 little-endian surgery on .gnu.version_r (the version needs of a shared object).
// Layout per the System V gABI / LSB: Elf64_Verneed {u16 vn_version, u16 vn_cnt, u32 vn_file,
// u32 vn_aux, u32 vn_next}, Elf64_Vernaux {u32 vna_hash, u16 vna_flags, u16 vna_other,
// u32 vna_name, u32 vna_next}.
using System.Buffers.Binary;
using System.Text;

namespace ChainLora.Runtime;

public static class ElfVersionPatch
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>
    /// Sets VER_FLG_WEAK on every version need named <paramref name="version"/>; returns how many
    /// entries it changed (0 when none exist or all are already weak, which makes it idempotent).
    /// </summary>
    public static int MarkVersionNeedWeak(byte[] elf, string version)
    {
        var changed = 0;
        foreach (var (flagsOffset, name) in VersionNeeds(elf))
        {
            if (name != version) continue;
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(flagsOffset));
            if ((flags & VerFlgWeak) != 0) continue;
            BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(flagsOffset), (ushort)(flags | VerFlgWeak));
            changed++;
        }
        return changed;
    }

    /// <summary>Names of version needs with their weak flag, e.g. for diagnostics and tests.</summary>
    public static IReadOnlyList<(string Name, bool Weak)> ListVersionNeeds(byte[] elf) =>
        VersionNeeds(elf)
            .Select(v => (v.Name, (BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(v.FlagsOffset)) & VerFlgWeak) != 0))
            .ToList();

    static List<(int FlagsOffset, string Name)> VersionNeeds(byte[] elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("only 64-bit little-endian ELF is supported");
        var span = elf.AsSpan();
        var shoff = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]));
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        if (shoff <= 0 || (long)shoff + (long)shentsize * shnum > elf.Length)
            throw new InvalidDataException("ELF section header table lies outside the file");

        var result = new List<(int, string)>();
        for (var i = 0; i < shnum; i++)
        {
            var sh = span[(shoff + i * shentsize)..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            var offset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]));
            var link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            var count = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x2C..]);
            var strSh = span[(shoff + link * shentsize)..];
            var strOffset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(strSh[0x18..]));

            var need = offset;
            for (var n = 0; n < count; n++)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(span[(need + 2)..]);
                var aux = need + (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(need + 8)..]);
                for (var a = 0; a < cnt; a++)
                {
                    var nameOffset = strOffset + (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(aux + 8)..]);
                    result.Add((aux + 4, CString(elf, nameOffset)));
                    aux += (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(aux + 12)..]);
                }
                need += (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(need + 12)..]);
            }
        }
        return result;
    }

    static string CString(byte[] data, int offset)
    {
        var end = Array.IndexOf(data, (byte)0, offset);
        if (end < 0) throw new InvalidDataException("unterminated string in ELF string table");
        return Encoding.ASCII.GetString(data, offset, end - offset);
    }
}
