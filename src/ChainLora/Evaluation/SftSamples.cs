// What a fine-tuned model answers: for held-out sft examples, the prompt (everything before the
// example's last trained run of tokens, its last response), the reference response, and the
// model's own response, decoded greedily until an end-of-turn id. `eval --task sft --samples FILE`
// writes them as JSON lines, one per example.
using System.Text.Encodings.Web;
using System.Text.Json;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Evaluation;

/// <summary>One sample: the decoded prompt, the reference response and the generated one; Stopped says why generation ended.</summary>
public sealed record SftSample(int Example, string Prompt, string Reference, string Generated, string Stopped);

public static class SftSamples
{
    /// <summary>Prompts decoded together.</summary>
    const int Batch = 8;

    /// <summary>
    /// Where <paramref name="example"/>'s last response starts: the first of the last run of tokens
    /// its loss mask marks (at least 1: the first token is never predicted).
    /// </summary>
    public static int ResponseStart(SftEncoded example)
    {
        var end = Array.LastIndexOf(example.LossMask, true);
        if (end < 1) throw new ArgumentException("an sft example with no response token");
        var start = end;
        while (start > 1 && example.LossMask[start - 1]) start--;
        return start;
    }

    /// <summary>
    /// Samples of the first <paramref name="count"/> of <paramref name="examples"/>: each prompt
    /// continued greedily for at most <paramref name="maxNewTokens"/> tokens (fewer where the model's
    /// context ends), stopping at an id of <paramref name="endOfTurn"/>.
    /// </summary>
    public static List<SftSample> Generate(CausalLM model, ITextTokenizer tokenizer, IReadOnlyList<SftEncoded> examples, int count, int maxNewTokens,
        IReadOnlySet<int> endOfTurn, CancellationToken stop = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNewTokens, 1);
        var chosen = examples.Take(count).Select((e, i) => (Index: i, Example: e, Start: ResponseStart(e)))
            .Where(x => x.Start < model.MaxPositions).ToList();
        var samples = new List<SftSample>();
        foreach (var group in chosen.Chunk(Batch))
        {
            var prompts = group.Select(x => (IReadOnlyList<int>)x.Example.InputIds[..x.Start]).ToList();
            var room = Math.Min(maxNewTokens, model.MaxPositions - prompts.Max(p => p.Count));
            var outputs = Generation.Generate(model, prompts, new GenerationOptions(room, StopIds: endOfTurn) { Stop = stop }, tokenizer.PadId);
            for (var k = 0; k < group.Length; k++)
            {
                var (index, example, start) = group[k];
                var reference = example.InputIds[start..].Where(id => !endOfTurn.Contains(id));
                samples.Add(new SftSample(index, tokenizer.Decode(prompts[k]), tokenizer.Decode(reference), tokenizer.Decode(outputs[k]),
                    outputs[k].Count < room ? "end_of_turn" : "max_new_tokens"));
            }
        }
        return samples;
    }

    /// <summary>Read by people: markers such as &lt;|im_end|&gt; and quotes stay as written, not \u003C-escaped.</summary>
    static readonly JsonSerializerOptions Readable = new(JsonLines.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary><paramref name="samples"/> as JSON lines in <paramref name="path"/> (example, prompt, reference, generated, stopped), written atomically.</summary>
    public static void Write(string path, IReadOnlyList<SftSample> samples) =>
        AtomicFile.WriteAllLines(path, samples.Select(s => JsonSerializer.Serialize(new
        {
            example = s.Example, prompt = s.Prompt, reference = s.Reference, generated = s.Generated, stopped = s.Stopped,
        }, Readable)));
}
