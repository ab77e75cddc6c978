// A restricted reader of the pickle that torch.save writes for a state dict (torch/serialization.py
// _save: protocol 2 by default, one torch._utils._rebuild_tensor_v2 call per tensor, storages as
// persistent ids). Opcode meanings follow CPython's Lib/pickle.py (_Unpickler.load_*). Unlike pickle,
// it calls nothing: the few allow-listed globals are interpreted here as data, and any other global
// (os.system, builtins.eval, ...), any other opcode and any other persistent id is refused.
using System.Buffers.Binary;
using System.Text;
using static TorchSharp.torch;

namespace ChainLora.IO;

/// <summary>A storage named by persistent id ('storage', type, key, location, numel); numel in elements.</summary>
internal sealed record PickledStorage(string Key, ScalarType DType, long Numel);

/// <summary>A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage, all in elements.</summary>
internal sealed record PickledTensor(PickledStorage Storage, long Offset, long[] Size, long[] Stride);

internal static class StateDictUnpickler
{
    /// <summary>
    /// The tensors of the top-level dict in <paramref name="pickle"/>, in pickle order (a repeated key keeps
    /// its last value, as in Python). Values that are not tensors are skipped. Errors name <paramref name="where"/>.
    /// </summary>
    public static List<KeyValuePair<string, PickledTensor>> ReadTensors(string where, ReadOnlySpan<byte> pickle)
    {
        var root = new Machine(where, pickle).Run();
        if (root is not PickleDict dict)
            throw new InvalidDataException($"{where}: the pickle holds {Describe(root)}, not a state dict (a dict of tensors)");
        var tensors = new List<KeyValuePair<string, PickledTensor>>();
        foreach (var (key, value) in dict.Items)
        {
            if (value is not PickledTensor tensor) continue;
            if (key is not string name)
                throw new InvalidDataException($"{where}: a tensor is stored under the key {Describe(key)}; state dict keys are strings");
            tensors.Add(new(name, tensor));
        }
        return tensors;
    }

    // Storage classes a persistent id may name, with the dtype of their elements. UntypedStorage holds bytes.
    static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["torch.FloatStorage"] = ScalarType.Float32, ["torch.HalfStorage"] = ScalarType.Float16,
        ["torch.BFloat16Storage"] = ScalarType.BFloat16, ["torch.DoubleStorage"] = ScalarType.Float64,
        ["torch.LongStorage"] = ScalarType.Int64, ["torch.IntStorage"] = ScalarType.Int32,
        ["torch.ShortStorage"] = ScalarType.Int16, ["torch.CharStorage"] = ScalarType.Int8,
        ["torch.ByteStorage"] = ScalarType.Byte, ["torch.BoolStorage"] = ScalarType.Bool,
        ["torch.UntypedStorage"] = ScalarType.Byte, ["torch.storage.UntypedStorage"] = ScalarType.Byte,
        // torch.dtype pickles as torch.<name> (its __reduce__ returns the name).
        ["torch.float32"] = ScalarType.Float32, ["torch.float16"] = ScalarType.Float16,
        ["torch.bfloat16"] = ScalarType.BFloat16, ["torch.float64"] = ScalarType.Float64,
        ["torch.int64"] = ScalarType.Int64, ["torch.int32"] = ScalarType.Int32, ["torch.int16"] = ScalarType.Int16,
        ["torch.int8"] = ScalarType.Int8, ["torch.uint8"] = ScalarType.Byte, ["torch.bool"] = ScalarType.Bool,
    };

    const string OrderedDict = "collections.OrderedDict";
    const string RebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
    const string RebuildTensor = "torch._utils._rebuild_tensor";
    const string RebuildParameter = "torch._utils._rebuild_parameter";
    const string RebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
    static readonly HashSet<string> Callables = [OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState];

    /// <summary>An allow-listed global, as the value GLOBAL pushes: only a name, never a resolved function.</summary>
    sealed record Global(string Name);

    /// <summary>A dict or OrderedDict in insertion order; a repeated string key replaces its value.</summary>
    sealed class PickleDict
    {
        public readonly List<KeyValuePair<object?, object?>> Items = [];
        readonly Dictionary<string, int> index = new(StringComparer.Ordinal);

        public void Set(object? key, object? value)
        {
            if (key is string s && index.TryGetValue(s, out var i)) Items[i] = new(key, value);
            else
            {
                if (key is string name) index[name] = Items.Count;
                Items.Add(new(key, value));
            }
        }
    }

    /// <summary>The pickle virtual machine: a value stack, mark positions, a memo; nothing else.</summary>
    ref struct Machine(string where, ReadOnlySpan<byte> data)
    {
        readonly ReadOnlySpan<byte> data = data;
        readonly List<object?> stack = [];
        readonly Stack<int> marks = new();
        readonly Dictionary<long, object?> memo = [];
        int pos;
        int at; // offset of the opcode being run, for errors
        long executed;

        static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        public object? Run()
        {
            while (true)
            {
                if (pos >= data.Length)
                    throw Bad($"the pickle ends at byte {data.Length} without STOP; data.pkl is truncated");
                at = pos;
                // Each opcode makes at most one object (a dict, list or tuple: ~150 bytes), so this
                // bounds the memory a hostile pickle can claim; a state dict needs ~40 a tensor.
                if (++executed > MaxOpcodes)
                    throw Bad($"more than {MaxOpcodes} opcodes; a state dict of even 100,000 tensors needs fewer");
                var op = data[pos++];
                switch (op)
                {
                    case 0x80: // PROTO
                        var protocol = Byte();
                        if (protocol is < 2 or > 5) throw Bad($"pickle protocol {protocol} (torch.save writes 2 to 5)");
                        break;
                    case 0x95: Take(8); break; // FRAME: a length hint for buffered readers; the data is all here
                    case (byte)'.': // STOP
                        if (stack.Count != 1 || marks.Count != 0)
                            throw Bad($"STOP with {stack.Count} values and {marks.Count} open marks on the stack, expected one value");
                        return stack[0];
                    case (byte)'(': marks.Push(stack.Count); break; // MARK
                    case (byte)'}': stack.Add(new PickleDict()); break; // EMPTY_DICT
                    case (byte)']': stack.Add(new List<object?>()); break; // EMPTY_LIST
                    case (byte)')': stack.Add(Array.Empty<object?>()); break; // EMPTY_TUPLE
                    case (byte)'t': stack.Add(PopToMark().ToArray()); break; // TUPLE
                    case 0x85: stack.Add(new[] { Pop() }); break; // TUPLE1
                    case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; } // TUPLE2
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; } // TUPLE3
                    case (byte)'q': memo[Byte()] = Top(); break; // BINPUT
                    case (byte)'r': memo[U32()] = Top(); break; // LONG_BINPUT
                    case 0x94: memo[memo.Count] = Top(); break; // MEMOIZE
                    case (byte)'h': stack.Add(Recall(Byte())); break; // BINGET
                    case (byte)'j': stack.Add(Recall(U32())); break; // LONG_BINGET
                    case (byte)'X': stack.Add(Text(U32())); break; // BINUNICODE
                    case 0x8C: stack.Add(Text(Byte())); break; // SHORT_BINUNICODE
                    case 0x8D: stack.Add(Text(U64())); break; // BINUNICODE8
                    case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                    case (byte)'K': stack.Add((long)Byte()); break; // BININT1
                    case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                    case 0x8A: stack.Add(Long1()); break; // LONG1
                    case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                    case (byte)'N': stack.Add(null); break; // NONE
                    case 0x88: stack.Add(true); break; // NEWTRUE
                    case 0x89: stack.Add(false); break; // NEWFALSE
                    case (byte)'c': { var module = Line(); stack.Add(Allowed(module, Line())); break; } // GLOBAL
                    case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop() as string ?? throw Bad("STACK_GLOBAL without a string name");
                        var module = Pop() as string ?? throw Bad("STACK_GLOBAL without a string module");
                        stack.Add(Allowed(module, name));
                        break;
                    }
                    case (byte)'R': { var args = Pop(); stack.Add(Call(Pop(), args)); break; } // REDUCE
                    case (byte)'b': Pop(); Build(Top()); break; // BUILD: the state is dropped
                    case (byte)'Q': stack.Add(Storage(Pop())); break; // BINPERSID
                    case (byte)'s': { var value = Pop(); var key = Pop(); TopDict().Set(key, value); break; } // SETITEM
                    case (byte)'u': // SETITEMS
                    {
                        var items = PopToMark();
                        if (items.Count % 2 != 0) throw Bad($"SETITEMS with an odd number ({items.Count}) of keys and values");
                        var dict = TopDict();
                        for (var i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
                        break;
                    }
                    case (byte)'a': { var item = Pop(); TopList().Add(item); break; } // APPEND
                    case (byte)'e': { var items = PopToMark(); TopList().AddRange(items); break; } // APPENDS
                    default:
                        throw Bad($"opcode 0x{op:X2}{(op is >= 0x20 and < 0x7F ? $" ('{(char)op}')" : "")} is not one a state dict needs; " +
                            "refusing to read further");
                }
            }
        }

        /// <summary>GLOBAL's value: the name only, and only if allow-listed. Nothing is imported or looked up.</summary>
        readonly Global Allowed(string module, string name)
        {
            var qualified = $"{module}.{name}";
            if (!Callables.Contains(qualified) && !StorageTypes.ContainsKey(qualified))
                throw Bad($"global '{qualified}' is not allowed: a state dict needs only tensors and OrderedDict, " +
                    "and this reader never runs code from a checkpoint");
            return new Global(qualified);
        }

        /// <summary>REDUCE of an allow-listed callable, interpreted: an empty OrderedDict or a tensor description.</summary>
        readonly object? Call(object? callable, object? args)
        {
            if (callable is not Global { Name: var name } || !Callables.Contains(name))
                throw Bad($"REDUCE calls {Describe(callable)}, which is not a callable this reader interprets");
            if (args is not object?[] a)
                throw Bad($"REDUCE of '{name}' with {Describe(args)} instead of an argument tuple");
            switch (name)
            {
                case OrderedDict when a.Length == 0:
                    return new PickleDict();
                case RebuildTensorV2 when a.Length is 6 or 7: // storage, offset, size, stride, requires_grad, hooks[, metadata]
                case RebuildTensor when a.Length == 4: // storage, offset, size, stride
                    return new PickledTensor(
                        a[0] as PickledStorage ?? throw Bad($"'{name}' given {Describe(a[0])} instead of a storage"),
                        a[1] as long? ?? throw Bad($"'{name}' given {Describe(a[1])} as the storage offset"),
                        Longs(name, "size", a[2]), Longs(name, "stride", a[3]));
                case RebuildParameter when a.Length == 3: // data, requires_grad, hooks
                case RebuildParameterWithState when a.Length == 4: // data, requires_grad, hooks, python attributes
                    return a[0] as PickledTensor ?? throw Bad($"'{name}' given {Describe(a[0])} instead of a tensor");
                default:
                    throw Bad($"'{name}' called with {a.Length} arguments, which torch.save does not write");
            }
        }

        /// <summary>BUILD sets instance state; only an OrderedDict's (state_dict()'s _metadata) is expected, and it is unused.</summary>
        readonly void Build(object? target)
        {
            if (target is not PickleDict)
                throw Bad($"BUILD sets the state of {Describe(target)}; only a dict's state is expected (and ignored)");
        }

        /// <summary>BINPERSID: torch.save's persistent id for a storage, the only kind accepted.</summary>
        readonly PickledStorage Storage(object? pid)
        {
            if (pid is object?[] { Length: 5 } t && t[0] is "storage" && t[1] is Global type && StorageTypes.TryGetValue(type.Name, out var dtype)
                && t[2] is string key && t[3] is string && t[4] is long numel && numel >= 0)
                return new PickledStorage(key, dtype, numel);
            throw Bad($"persistent id {Describe(pid)} is not a storage reference ('storage', type, key, location, numel)");
        }

        readonly long[] Longs(string function, string field, object? value) =>
            value is object?[] items && items.All(v => v is long)
                ? items.Select(v => (long)v!).ToArray()
                : throw Bad($"'{function}' given {Describe(value)} as the {field}, not a tuple of integers");

        object? Pop()
        {
            if (stack.Count <= (marks.Count > 0 ? marks.Peek() : 0))
                throw Bad("the opcode needs a value and the stack (above its mark) is empty");
            var value = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return value;
        }

        readonly object? Top() => stack.Count > 0 ? stack[^1] : throw Bad("the opcode needs a value and the stack is empty");

        readonly PickleDict TopDict() => Top() as PickleDict ?? throw Bad($"sets an item of {Describe(Top())}, not of a dict");

        readonly List<object?> TopList() => Top() as List<object?> ?? throw Bad($"appends to {Describe(Top())}, not to a list");

        List<object?> PopToMark()
        {
            if (marks.Count == 0) throw Bad("the opcode needs a MARK and none is open");
            var mark = marks.Pop();
            var items = stack.GetRange(mark, stack.Count - mark);
            stack.RemoveRange(mark, stack.Count - mark);
            return items;
        }

        readonly object? Recall(long index) =>
            memo.TryGetValue(index, out var value) ? value : throw Bad($"memo entry {index} is read before it is written");

        ReadOnlySpan<byte> Take(long count)
        {
            if (count > data.Length - pos)
                throw Bad($"the opcode needs {count} bytes and data.pkl has {data.Length - pos} left; it is truncated");
            var span = data.Slice(pos, (int)count);
            pos += (int)count;
            return span;
        }

        byte Byte() => Take(1)[0];
        uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        long U64()
        {
            var n = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
            return n <= int.MaxValue ? (long)n : throw Bad($"a {n}-byte string is longer than data.pkl");
        }

        /// <summary>LONG1: a little-endian two's-complement integer of n bytes; more than 64 bits is refused.</summary>
        long Long1()
        {
            var n = Byte();
            if (n > 8) throw Bad($"a {n}-byte integer does not fit 64 bits");
            var bytes = Take(n);
            long value = 0;
            for (var i = n - 1; i >= 0; i--) value = value << 8 | bytes[i];
            if (n is > 0 and < 8 && (bytes[n - 1] & 0x80) != 0) value -= 1L << (8 * n); // sign-extend
            return value;
        }

        string Text(long length)
        {
            var bytes = Take(length);
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException e)
            {
                throw Bad($"a string that is not UTF-8 ({e.Message})");
            }
        }

        /// <summary>GLOBAL's operands: text up to a newline.</summary>
        string Line()
        {
            var end = data[pos..].IndexOf((byte)'\n');
            if (end < 0) throw Bad("GLOBAL's name has no terminating newline; data.pkl is truncated");
            return Text(end + 1)[..^1];
        }

        readonly InvalidDataException Bad(string message) => new($"{where}: byte {at}: {message}");
    }

    /// <summary>Opcodes one pickle may run.</summary>
    const long MaxOpcodes = 4_000_000;

    /// <summary>A value in an error message; nested tuples are described three levels deep (they may nest a million).</summary>
    static string Describe(object? value) => Describe(value, depth: 0);

    static string Describe(object? value, int depth) => value switch
    {
        null => "None",
        string s => s.Length <= 60 ? $"the string '{s}'" : $"the string '{s[..60]}...'",
        long n => $"the integer {n}",
        bool b => b ? "True" : "False",
        double d => $"the float {d}",
        object?[] t when depth >= 3 => $"a tuple of {t.Length}",
        object?[] t => $"a tuple of {t.Length} ({string.Join(", ", t.Take(5).Select(v => Describe(v, depth + 1)))}{(t.Length > 5 ? ", ..." : "")})",
        List<object?> l => $"a list of {l.Count}",
        PickleDict d => $"a dict of {d.Items.Count}",
        Global g => $"the global '{g.Name}'",
        PickledStorage s => $"storage '{s.Key}'",
        PickledTensor => "a tensor",
        _ => value.GetType().Name,
    };
}
