// optimizer.bin as TorchSharp 0.107 writes it (OptimizerHelper.save_state_dict), checked against the
// optimizer it is about to be loaded into. TorchSharp's reader trusts the file: a negative length
// became an OverflowException, the option values (betas, eps, weight decay, AMSGrad, gradient ascent)
// were taken from it in place of this run's, and an SGD momentum buffer was allocated with whatever
// dtype and shape it named.
//   name         string (7-bit encoded length, UTF-8): the optimizer's class name
//   counts       parameter groups, states (one per parameter, in parameter order): LEB128
//   per group    InitialLearningRate, LearningRate: double, then
//                  AdamW    beta1, beta2, eps, weight_decay: double; amsgrad, maximize: bool
//                  SGD      momentum, dampening, weight_decay: double; nesterov, maximize: bool
//                  Adagrad  lr_decay, initial_accumulator_value, eps, weight_decay: double
//   per state      AdamW    step: long; exp_avg, exp_avg_sq: tensor; bool [+ max_exp_avg_sq: tensor]
//                  SGD      bool [+ momentum_buffer: tensor]
//                  Adagrad  step: long; sum: tensor
//   tensor       dtype, rank, each dimension: LEB128; then the elements' bytes
using TorchSharp.Modules;

namespace ChainLora.Training;

static class OptimizerStateFile
{
    /// <summary>
    /// Refuses, naming <paramref name="path"/>, a file that is not <paramref name="optimizer"/>'s state
    /// for this run: another layout, other option values, step counts outside 0..<paramref name="maxStep"/>.
    /// </summary>
    public static void Check(string path, OptimizerHelper optimizer, long maxStep)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{path}: {what}; the checkpoint is damaged or from other options");
        }
        using var reader = new BinaryReader(File.OpenRead(path));
        try
        {
            var name = reader.ReadString();
            Require(name == optimizer.GetType().Name, $"the state of a {name} optimizer where this run uses {optimizer.GetType().Name}");
            var saved = optimizer.state_dict();
            var (groups, states) = (Leb128(reader), Leb128(reader));
            Require(groups == saved.Options.Count && states == saved.State.Count,
                $"{groups} parameter groups and {states} states where this run has {saved.Options.Count} and {saved.State.Count}");
            foreach (var options in saved.Options) CheckOptions(reader, options, Require);
            var parameters = optimizer.parameters().ToList();
            for (var i = 0; i < parameters.Count; i++) CheckState(reader, saved.State[i], parameters[i], maxStep, Require);
            Require(reader.BaseStream.Position == reader.BaseStream.Length, $"{reader.BaseStream.Length - reader.BaseStream.Position} bytes after the last state");
        }
        // A 7-bit encoded length that never ends, or a file that stops inside a field.
        catch (Exception e) when (e is EndOfStreamException or FormatException)
        {
            throw new InvalidDataException($"{path}: ends early or holds a malformed length; the checkpoint is damaged", e);
        }
    }

    static void CheckOptions(BinaryReader reader, OptimizerOptions options, Action<bool, string> require)
    {
        void Same(string field, double? expected)
        {
            var value = reader.ReadDouble();
            require(value.Equals(expected), $"{field} is {value} where this run has {expected}");
        }
        void SameFlag(string field, bool? expected)
        {
            var value = reader.ReadByte();
            require(value == (expected == true ? 1 : 0), $"{field} is {value} where this run has {expected}");
        }
        Same("the initial learning rate", options.InitialLearningRate);
        var rate = reader.ReadDouble(); // the schedule sets it before every step
        require(double.IsFinite(rate) && rate >= 0, $"the learning rate is {rate}");
        switch (options)
        {
            case AdamW.Options o:
                Same("beta1", o.beta1); Same("beta2", o.beta2); Same("eps", o.eps); Same("weight_decay", o.weight_decay);
                SameFlag("amsgrad", o.amsgrad); SameFlag("maximize", o.maximize);
                break;
            case SGD.Options o:
                Same("momentum", o.momentum); Same("dampening", o.dampening); Same("weight_decay", o.weight_decay);
                SameFlag("nesterov", o.nesterov); SameFlag("maximize", o.maximize);
                break;
            case Adagrad.Options o:
                Same("lr_decay", o.lr_decay); Same("initial_accumulator_value", o.initial_accumulator_value); Same("eps", o.eps);
                Same("weight_decay", o.weight_decay);
                break;
            default:
                throw new NotSupportedException($"optimizer options {options.GetType().FullName} cannot be checked");
        }
    }

    static void CheckState(BinaryReader reader, OptimizerState state, Parameter parameter, long maxStep, Action<bool, string> require)
    {
        void Step()
        {
            var step = reader.ReadInt64();
            require(step >= 0 && step <= maxStep, $"an optimizer step count of {step} at checkpoint step {maxStep}");
        }
        bool Flag()
        {
            var value = reader.ReadByte();
            require(value is 0 or 1, $"a presence flag of {value}");
            return value == 1;
        }
        // A moment of the parameter: its dtype and shape, then its bytes.
        void Moment()
        {
            var (dtype, rank) = (Leb128(reader), Leb128(reader));
            require(dtype == (long)parameter.dtype && rank == parameter.dim(), $"a moment of dtype {dtype} and rank {rank} for a {parameter.dtype} parameter of rank {parameter.dim()}");
            var shape = Enumerable.Range(0, (int)rank).Select(_ => Leb128(reader)).ToArray();
            require(shape.SequenceEqual(parameter.shape), $"a moment of shape [{string.Join(", ", shape)}] for a parameter of shape [{string.Join(", ", parameter.shape)}]");
            var bytes = parameter.numel() * parameter.ElementSize;
            if (reader.BaseStream.Length - reader.BaseStream.Position < bytes) throw new EndOfStreamException();
            reader.BaseStream.Seek(bytes, SeekOrigin.Current);
        }
        switch (state)
        {
            case AdamW.State s:
                Step(); Moment(); Moment();
                var hasMax = Flag();
                require(hasMax == s.max_exp_avg_sq is not null, $"an AMSGrad maximum {(hasMax ? "present" : "absent")} where this run has {(hasMax ? "none" : "one")}");
                if (hasMax) Moment();
                break;
            case SGD.State:
                if (Flag()) Moment(); // no momentum buffer until the first step with momentum
                break;
            case Adagrad.State:
                Step(); Moment();
                break;
            default:
                throw new NotSupportedException($"optimizer state {state.GetType().FullName} cannot be checked");
        }
    }

    /// <summary>An unsigned LEB128 number, as TorchSharp's LEB128Codec writes it; more than ten bytes is malformed.</summary>
    static long Leb128(BinaryReader reader)
    {
        long value = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            var b = reader.ReadByte();
            value |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new FormatException("a LEB128 number longer than ten bytes");
    }
}
