// libtorch's CPU generator state, the bytes torch.get_rng_state() returns: CPUGeneratorImplState in
// aten/src/ATen/CPUGeneratorImpl.cpp, laid out for a 64-bit process:
//      0  uint64 the_initial_seed
//      8  int32  left              draws left before the next twist
//     12  int32  seeded
//     16  uint64 next              index of the next mt19937 word (libtorch keeps its low 32 bits)
//     24  uint64 state[624]        the mt19937 words (libtorch keeps their low 32 bits)
//   5016  double normal_x, normal_y, normal_rho
//   5040  int32  normal_is_valid   normal_y is the cached next double normal sample
//   5048  float  next_float_normal_sample
//   5052  bool   is_next_float_normal_sample_valid
// CPUGeneratorImpl::set_state throws "Invalid mt19937 state" unless seeded != 0, 0 < left <= 624 and
// next <= 624 (mt19937_engine::is_valid in ATen/core/MT19937RNGEngine.h), and TorchSharp's
// set_rng_state does not catch it: the process aborts. So a state read from a file is checked here first.
using System.Buffers.Binary;

namespace ChainLora.Training;

static class GeneratorState
{
    const int MersenneWords = 624;
    const int Left = 8, Seeded = 12, Next = 16, NormalY = 5024, NormalValid = 5040, FloatNormal = 5048, FloatNormalValid = 5052;

    /// <summary>
    /// Why libtorch would refuse <paramref name="state"/> (or draw from outside its 624 words, or
    /// cache a non-finite normal sample), or null when it is a state libtorch produces. The length is
    /// the caller's to check against <c>get_rng_state()</c>.
    /// </summary>
    public static string? Problem(ReadOnlySpan<byte> state)
    {
        if (state.Length <= FloatNormalValid) return $"{state.Length} bytes";
        var left = BinaryPrimitives.ReadInt32LittleEndian(state[Left..]);
        var seeded = BinaryPrimitives.ReadInt32LittleEndian(state[Seeded..]);
        var next = BinaryPrimitives.ReadUInt32LittleEndian(state[Next..]);
        if (seeded == 0) return "the mt19937 generator is marked unseeded";
        if (left is <= 0 or > MersenneWords || next > MersenneWords)
            return $"the mt19937 position (left {left}, next {next}) is outside its {MersenneWords} words";
        // libtorch checks the two apart; each draw before the next twist reads word `next` and
        // advances it, so past this bound the draws read beyond the array.
        if (left + next > MersenneWords + 1)
            return $"the mt19937 position (left {left}, next {next}) would draw past its {MersenneWords} words";
        var normalValid = BinaryPrimitives.ReadInt32LittleEndian(state[NormalValid..]);
        var floatValid = state[FloatNormalValid];
        if (normalValid is not (0 or 1) || floatValid is not (0 or 1))
            return $"the cached normal sample flags ({normalValid}, {floatValid}) are not 0 or 1";
        if (normalValid == 1 && !double.IsFinite(BinaryPrimitives.ReadDoubleLittleEndian(state[NormalY..]))
            || floatValid == 1 && !float.IsFinite(BinaryPrimitives.ReadSingleLittleEndian(state[FloatNormal..])))
            return "a cached normal sample is not finite";
        return null;
    }
}
