using System.Text.Json.Nodes;
using ChainLora.Chain;
using ChainLora.Lora;
using ChainLora.Training;

namespace ChainLora.Tests.Training;

/// <summary>TensorBoard events, read back with an independent reader (framing, CRCs, protobufs): <see cref="TensorBoardFile"/>.</summary>
public sealed class TensorBoardTests : TempFolderTest
{
    [Fact]
    public void The_readers_crc32c_has_the_standard_check_value()
    {
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720, B.4); masked as TFRecord does.
        const uint crc = 0xE3069283;
        Assert.Equal(((crc >> 15) | (crc << 17)) + 0xa282ead8u, TensorBoardFile.MaskedCrc("123456789"u8));
    }

    [Fact]
    public void A_chain_writes_every_steps_scalars_and_a_marker_at_each_knot()
    {
        var log = PathIn("train_log.jsonl");
        var events = PathIn("tb");
        using var model = TinyModels.Opt();
        var trainer = new ChainTrainer(model, new TrainerOptions
        {
            Method = TrainingMethod.Cola, LearningRate = 5e-3, Epochs = 3, Seed = 2,
        }, new LoraConfig(), new ChainConfig { Length = 3 }, new RunPlumbing { LogPath = log, TensorBoardDir = events });
        var result = trainer.Train(new RandomLmData(4));

        var file = Assert.Single(Directory.GetFiles(events, "events.out.tfevents.*"));
        var contents = TensorBoardFile.Read(file);
        Assert.Equal("brain.Event:2", contents.FileVersion);
        var lines = File.ReadAllLines(log).Select(l => JsonNode.Parse(l)!).Where(n => n["loss"] is not null).ToList();
        Assert.Equal(12, lines.Count);
        foreach (var (tag, field) in new[] { ("train/loss", "loss"), ("train/learning_rate", "lr"), ("train/tokens_per_s", "tokens_per_s"), ("train/grad_norm", "grad_norm") })
        {
            var scalars = contents.Scalars.Where(s => s.Tag == tag).ToList();
            Assert.Equal(lines.Select(l => (long)l["step"]!.GetValue<int>()), scalars.Select(s => s.Step));
            Assert.Equal(lines.Select(l => (float)l[field]!.GetValue<double>()), scalars.Select(s => s.Value));
        }
        Assert.Equal(result.StepLosses.Select(l => (float)l), contents.Scalars.Where(s => s.Tag == "train/loss").Select(s => s.Value));
        Assert.All(contents.Scalars.Where(s => s.Tag == "train/grad_norm"), s => Assert.True(s.Value > 0));
        // Knots after steps 4 and 8; the marker's value is the new link's number.
        Assert.Equal([(4L, 2f), (8L, 3f)], contents.Scalars.Where(s => s.Tag == "chain/knot").Select(s => (s.Step, s.Value)));
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.All(contents.Scalars, s => Assert.InRange(s.WallTime, now - 3600, now + 60));
    }

    [Fact]
    public void A_damaged_record_is_caught_by_the_reader()
    {
        var events = PathIn("tb");
        var writer = new TensorBoardEvents(events);
        writer.Scalar("x", 1.5, 3);
        var file = Directory.GetFiles(events).Single();
        var bytes = File.ReadAllBytes(file);
        Assert.Equal([("x", 3L, 1.5f)], TensorBoardFile.Read(file).Scalars.Select(s => (s.Tag, s.Step, s.Value)));
        bytes[^6] ^= 0x40;  // inside the last payload: its CRC no longer matches
        File.WriteAllBytes(file, bytes);
        Assert.ThrowsAny<Exception>(() => TensorBoardFile.Read(file));
    }
}
