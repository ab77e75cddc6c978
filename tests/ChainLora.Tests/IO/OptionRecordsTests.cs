using System.Text.Json.Nodes;
using ChainLora.IO;

namespace ChainLora.Tests.IO;

/// <summary>The one writer of an options record: what it writes, renames, hoists, leaves out and refuses.</summary>
public sealed class OptionRecordsTests
{
    enum Shape { Round, Square }

    sealed record Inner
    {
        [RecordedAs("inner_rate")] public double Rate { get; init; } = 0.5;
        [RecordedWhenSet] public Shape Shape { get; init; }
    }

    sealed record Outer
    {
        public int Epochs { get; init; } = 3;
        [NotRecorded] public string? OutDir { get; init; }
        [RecordedFlat] public Inner Inner { get; init; } = new();
        [RecordedWhenSet] public int SourceWindows { get; init; } = 200;
        public string Derived => $"{Epochs}";
    }

    sealed record Clash
    {
        public double InnerRate { get; init; }
        [RecordedFlat] public Inner Inner { get; init; } = new();
    }

    [Fact]
    public void A_record_is_written_flat_with_its_settings_only()
    {
        Assert.Equal("""{"epochs":3,"inner_rate":0.5}""", OptionRecords.Flatten(new Outer { OutDir = "/tmp/x" }).ToJsonString());
    }

    [Fact]
    public void A_setting_recorded_when_set_appears_once_it_differs_from_a_fresh_record()
    {
        var set = OptionRecords.Flatten(new Outer { SourceWindows = 50, Inner = new Inner { Shape = Shape.Square } });
        Assert.Equal("""{"epochs":3,"inner_rate":0.5,"shape":"square","source_windows":50}""", set.ToJsonString());
    }

    [Fact]
    public void A_name_written_twice_is_refused_naming_the_field()
    {
        var e = Assert.Throws<InvalidOperationException>(() => OptionRecords.Flatten(new Clash()));
        Assert.Equal("Inner.Rate: the field 'inner_rate' is recorded twice", e.Message);
    }

    [Fact]
    public void Ordered_puts_the_known_fields_first_and_keeps_the_rest_as_they_came()
    {
        var flat = new JsonObject { ["z"] = 1, ["b"] = 2, ["a"] = 3, ["new"] = 4 };
        Assert.Equal("""{"a":3,"b":2,"z":1,"new":4}""", OptionRecords.Ordered(flat, ["a", "missing", "b"]).ToJsonString());
    }
}
