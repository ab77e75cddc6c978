// Parquet files with the column types Hugging Face datasets writes (through pyarrow): string, int64
// class labels, int32 indices, lists of strings and structs of lists, written by Arrow's C++ writer.
using Apache.Arrow;
using Apache.Arrow.Types;
using ParquetSharp.Arrow;

namespace ChainLora.Tests;

static class ParquetFiles
{
    /// <summary>One row group holding <paramref name="columns"/>, all of one length.</summary>
    public static void Write(string path, params (string Name, IArrowArray Values)[] columns)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var schema = new Schema([.. columns.Select(c => new Field(c.Name, c.Values.Data.DataType, nullable: true))], null);
        using var writer = new FileWriter(path, schema);
        writer.WriteRecordBatch(new RecordBatch(schema, columns.Select(c => c.Values), columns[0].Values.Length));
        writer.Close();
    }

    public static IArrowArray Strings(params string[] values) => new StringArray.Builder().AppendRange(values).Build();

    public static IArrowArray Longs(params long[] values) => new Int64Array.Builder().AppendRange(values).Build();

    public static IArrowArray Ints(params int[] values) => new Int32Array.Builder().AppendRange(values).Build();

    public static ListArray StringLists(params string[][] rows)
    {
        var builder = new ListArray.Builder(StringType.Default);
        var items = (StringArray.Builder)builder.ValueBuilder;
        foreach (var row in rows)
        {
            builder.Append();
            items.AppendRange(row);
        }
        return builder.Build();
    }

    /// <summary>A struct column whose fields are <paramref name="fields"/> (a DROP answer: spans and types).</summary>
    public static IArrowArray Struct(params (string Name, IArrowArray Values)[] fields)
    {
        var type = new StructType([.. fields.Select(f => new Field(f.Name, f.Values.Data.DataType, nullable: true))]);
        return new StructArray(type, fields[0].Values.Length, fields.Select(f => f.Values), ArrowBuffer.Empty, nullCount: 0);
    }
}
