using System.Buffers.Binary;
using ChainLora.Training;
using CsCheck;
using static TorchSharp.torch;

namespace ChainLora.Tests.Training;

/// <summary>
/// rng.bin's check against libtorch's CPUGeneratorImpl::set_state: every state libtorch writes passes,
/// and a state it would refuse (which aborts the process: TorchSharp does not catch the error) never does.
/// </summary>
public class GeneratorStateTests
{
    static byte[] CurrentState()
    {
        using var state = get_rng_state();
        return state.data<byte>().ToArray();
    }

    [Theory]
    [InlineData(0)]    // freshly seeded: left 1, next 0
    [InlineData(1)]    // just twisted
    [InlineData(623)]
    [InlineData(624)]  // one draw before the next twist
    [InlineData(625)]
    [InlineData(5000)]
    public void Every_state_libtorch_writes_passes(int draws)
    {
        manual_seed(7);
        using (var g = randint(0, 1 << 30, [draws], dtype: ScalarType.Int64)) { }
        Assert.Null(GeneratorState.Problem(CurrentState()));
        using (var g = randn(1, dtype: ScalarType.Float64)) { } // caches a normal sample
        Assert.Null(GeneratorState.Problem(CurrentState()));
    }

    [Theory]
    [InlineData(8, 0, "outside its 624 words")]        // left 0
    [InlineData(8, 625, "outside its 624 words")]      // left 625
    [InlineData(16, 625, "outside its 624 words")]     // next 625
    [InlineData(12, 0, "unseeded")]                    // seeded 0
    [InlineData(5040, 2, "not 0 or 1")]                // normal_is_valid 2
    public void A_field_out_of_range_is_named(int offset, int value, string expected)
    {
        manual_seed(7);
        var state = CurrentState();
        BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(offset), value);
        Assert.Contains(expected, GeneratorState.Problem(state));
    }

    [Fact]
    public void A_position_that_would_draw_past_the_words_and_a_cached_nan_are_refused_though_libtorch_takes_them()
    {
        manual_seed(7);
        var state = CurrentState();
        BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(8), 2);     // left 2
        BinaryPrimitives.WriteUInt32LittleEndian(state.AsSpan(16), 624); // next 624: the next draw reads word 624
        Assert.Contains("would draw past", GeneratorState.Problem(state));

        manual_seed(7);
        state = CurrentState();
        BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(5040), 1);
        BinaryPrimitives.WriteDoubleLittleEndian(state.AsSpan(5024), double.NaN);
        Assert.Contains("not finite", GeneratorState.Problem(state));
    }

    [Fact]
    public void Libtorch_takes_every_state_that_passes()
    {
        manual_seed(7);
        var valid = CurrentState();
        // left, seeded and next drawn near and across their bounds, and random flags.
        var field = Gen.OneOf(Gen.Int[-2, 630], Gen.Int);
        Gen.Select(field, Gen.Int[-1, 2], field, Gen.Byte).Sample((left, seeded, next, flag) =>
        {
            var state = (byte[])valid.Clone();
            BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(8), left);
            BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(12), seeded);
            BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(16), next);
            state[5052] = flag;
            if (GeneratorState.Problem(state) is not null) return;
            using var t = tensor(state, ScalarType.Byte, CPU);
            set_rng_state(t); // a state libtorch refuses would abort the test process here
        }, iter: 2000);
    }
}
