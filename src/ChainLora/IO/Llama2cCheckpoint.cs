// Reads karpathy/llama2.c "v0" checkpoints (run.c: read_checkpoint / memory_map_weights):
// 7 int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
// negative vocab_size means an untied classifier follows), then fp32 weights in a fixed order.
// Tensors are returned under Hugging Face Llama names, with q/k rows permuted from llama2.c's
// interleaved rotary pairs to HF's rotate-half layout (as convert_llama_weights_to_hf.py does).
using static TorchSharp.torch;

namespace ChainLora.IO;

public sealed record Llama2cHeader(int Dim, int HiddenDim, int NumLayers, int NumHeads, int NumKvHeads,
    int VocabSize, int SeqLen, bool SharedClassifier)
{
    public int HeadSize => Dim / NumHeads;
}

public static class Llama2cCheckpoint
{
    const int HeaderBytes = 7 * sizeof(int);

    public static Llama2cHeader ReadHeader(string path)
    {
        using var stream = OpenChecked(path);
        return ReadHeader(stream, path);
    }

    /// <summary>Header plus every weight under its HF name, fp32 on the CPU.</summary>
    public static (Llama2cHeader Header, Dictionary<string, Tensor> Tensors) Load(string path)
    {
        using var stream = OpenChecked(path);
        var h = ReadHeader(stream, path);
        var floats = new float[(stream.Length - HeaderBytes) / sizeof(float)];
        stream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(floats.AsSpan()));
        var all = tensor(floats, device: CPU);
        long offset = 0;
        Tensor Next(params long[] shape)
        {
            var n = shape.Aggregate(1L, (a, b) => a * b);
            var t = all.narrow(0, offset, n).view(shape).clone();
            offset += n;
            return t;
        }

        var (dim, hidden, layers, hs) = ((long)h.Dim, (long)h.HiddenDim, h.NumLayers, (long)h.HeadSize);
        var qDim = h.NumHeads * hs;
        var kvDim = h.NumKvHeads * hs;
        var d = new Dictionary<string, Tensor>();
        var embed = Next(h.VocabSize, dim);
        d["model.embed_tokens.weight"] = embed;
        void PerLayer(string name, Func<Tensor, Tensor> convert, params long[] shape)
        {
            for (var l = 0; l < layers; l++) d[$"model.layers.{l}.{name}"] = convert(Next(shape));
        }
        PerLayer("input_layernorm.weight", t => t, dim);
        PerLayer("self_attn.q_proj.weight", t => InterleavedToHalves(t, h.NumHeads), qDim, dim);
        PerLayer("self_attn.k_proj.weight", t => InterleavedToHalves(t, h.NumKvHeads), kvDim, dim);
        PerLayer("self_attn.v_proj.weight", t => t, kvDim, dim);
        PerLayer("self_attn.o_proj.weight", t => t, dim, qDim);
        PerLayer("post_attention_layernorm.weight", t => t, dim);
        PerLayer("mlp.gate_proj.weight", t => t, hidden, dim);
        PerLayer("mlp.down_proj.weight", t => t, dim, hidden);
        PerLayer("mlp.up_proj.weight", t => t, hidden, dim);
        d["model.norm.weight"] = Next(dim);
        offset += 2L * h.SeqLen * hs / 2; // freq_cis_real and freq_cis_imag: unused, recomputed
        if (!h.SharedClassifier) d["lm_head.weight"] = Next(h.VocabSize, dim);
        all.Dispose();
        return (h, d);
    }

    /// <summary>
    /// Rows of a q/k projection (heads*hs, dim) reordered so that each head's interleaved pairs
    /// (x0,x1),(x2,x3).. become halves (x0,x2,..|x1,x3,..): rotate-half then equals llama2.c's rotation.
    /// </summary>
    public static Tensor InterleavedToHalves(Tensor w, int heads)
    {
        var (rows, cols) = (w.shape[0], w.shape[1]);
        return w.view(heads, rows / heads / 2, 2, cols).transpose(1, 2).reshape(rows, cols);
    }

    static FileStream OpenChecked(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"llama2.c checkpoint not found: {path}", path);
        return File.OpenRead(path);
    }

    static Llama2cHeader ReadHeader(FileStream stream, string path)
    {
        if (stream.Length < HeaderBytes)
            throw new InvalidDataException($"{path}: {stream.Length} bytes is too short for a llama2.c header ({HeaderBytes} bytes)");
        Span<int> f = stackalloc int[7];
        stream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f));
        string[] names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (var i = 0; i < 7; i++)
            if (f[i] == 0 || (f[i] < 0 && i != 5) || Math.Abs((long)f[i]) > 1 << 24)
                throw new InvalidDataException($"{path}: header field {names[i]} = {f[i]} is not a plausible size");
        var h = new Llama2cHeader(f[0], f[1], f[2], f[3], f[4], Math.Abs(f[5]), f[6], f[5] > 0);
        if (h.Dim % h.NumHeads != 0 || h.HeadSize % 2 != 0)
            throw new InvalidDataException($"{path}: n_heads = {h.NumHeads} does not split dim = {h.Dim} into even head sizes");
        if (h.NumHeads % h.NumKvHeads != 0)
            throw new InvalidDataException($"{path}: n_kv_heads = {h.NumKvHeads} does not divide n_heads = {h.NumHeads}");
        var expected = HeaderBytes + sizeof(float) * ParameterCount(h);
        if (stream.Length != expected)
            throw new InvalidDataException(
                $"{path}: file has {stream.Length} bytes but its header describes {expected} (truncated or not a v0 llama2.c checkpoint)");
        return h;
    }

    static long ParameterCount(Llama2cHeader h)
    {
        long dim = h.Dim, hidden = h.HiddenDim, layers = h.NumLayers, hs = h.HeadSize;
        long q = h.NumHeads * hs, kv = h.NumKvHeads * hs;
        return h.VocabSize * dim + layers * (2 * dim + 2 * dim * q + 2 * dim * kv + 3 * dim * hidden)
             + dim + h.SeqLen * hs + (h.SharedClassifier ? 0 : h.VocabSize * dim);
    }
}
