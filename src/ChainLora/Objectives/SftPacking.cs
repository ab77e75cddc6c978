// Packing (--pack): several sft examples share one row, so a batch holds few pad tokens. An example
// of n tokens takes n - 1 positions of a row (its last token is only predicted), examples never
// split across rows, and rows are filled best-fit-decreasing, as TRL's default packing strategy.
// Each position carries the number of its example (1, 2, ... within the row; 0 for padding) as the
// attention mask: the model's attention then stays inside an example and positions restart at each
// one (AttentionPlan.Create, Positions.Of), so every example's loss is the one it has alone.
using ChainLora.Models;
using ChainLora.Tasks;
using static TorchSharp.torch;

namespace ChainLora.Objectives;

/// <summary>Examples sharing one row, in the row's order.</summary>
public sealed record PackedRow(IReadOnlyList<SftEncoded> Examples)
{
    public int Positions => Examples.Sum(SftPacking.PositionsOf);
}

public static class SftPacking
{
    /// <summary>Positions an example takes in a row: every token but the last is an input.</summary>
    public static int PositionsOf(SftEncoded example) => example.InputIds.Length - 1;

    /// <summary>
    /// <paramref name="examples"/> in rows of at most <paramref name="capacity"/> positions, best fit
    /// decreasing: longest first, each into the row it fills most tightly (a new row when none has
    /// room). Deterministic: equal lengths keep their order, rows are numbered as opened.
    /// </summary>
    public static IReadOnlyList<PackedRow> Pack(IReadOnlyList<SftEncoded> examples, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var rows = new List<List<SftEncoded>>();
        var room = new List<int>();
        // Rows by the room they have left, then their number: the tightest fit is the first with enough room.
        var open = new SortedSet<(int Room, int Row)>();
        foreach (var example in examples.OrderByDescending(PositionsOf))
        {
            var need = PositionsOf(example);
            if (need > capacity)
                throw new ArgumentException($"an example of {need + 1} tokens does not fit a packed row of {capacity} positions");
            var fit = open.GetViewBetween((need, 0), (capacity, int.MaxValue));
            int row;
            if (fit.Count > 0)
            {
                row = fit.Min.Row;
                open.Remove(fit.Min);
            }
            else
            {
                row = rows.Count;
                rows.Add([]);
                room.Add(capacity);
            }
            rows[row].Add(example);
            room[row] -= need;
            if (room[row] > 0) open.Add((room[row], row));
        }
        return [.. rows.Select(r => new PackedRow(r))];
    }

    public static PackingSummary Summarize(IReadOnlyList<PackedRow> rows, int capacity) =>
        new(rows.Sum(r => r.Examples.Count), rows.Count, capacity, rows.Count == 0 ? 0 : rows.Average(r => r.Positions) / capacity);

    /// <summary>
    /// Inputs, targets and example numbers, each (N, T) with T the longest row: input[t] the ids of
    /// the row's examples one after another (every token but each one's last), target[t] the next
    /// token of the same example where its loss mask marks it (else -100), example[t] 1, 2, ... by
    /// example and 0 on the right padding.
    /// </summary>
    public static (Tensor Input, Tensor Targets, Tensor Examples) Tensors(IReadOnlyList<PackedRow> rows, Device device, int padId)
    {
        if (rows.Count == 0) throw new ArgumentException("nothing to pack");
        var t = rows.Max(r => r.Positions);
        var input = new long[rows.Count * t];
        var targets = new long[rows.Count * t];
        var numbers = new long[rows.Count * t];
        Array.Fill(input, padId);
        Array.Fill(targets, MarkedPositions.Ignore);
        for (var i = 0; i < rows.Count; i++)
        {
            var at = i * t;
            for (var e = 0; e < rows[i].Examples.Count; e++)
            {
                var (ids, mask) = (rows[i].Examples[e].InputIds, rows[i].Examples[e].LossMask);
                for (var j = 0; j < ids.Length - 1; j++, at++)
                {
                    input[at] = ids[j];
                    if (mask[j + 1]) targets[at] = ids[j + 1];
                    numbers[at] = e + 1;
                }
            }
        }
        return (tensor(input, [rows.Count, t], device: device), tensor(targets, [rows.Count, t], device: device),
            tensor(numbers, [rows.Count, t], device: device));
    }
}
