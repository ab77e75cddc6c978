// Token ids of rendered examples. The prompt is Encode(prompt, addBos: true); an answer or option
// is EncodeContinuation(text), so " great" keeps its space and "Yes" after "\n" gets none.
// Over-long prompts lose their oldest tokens, BOS kept, so that prompt + answer fits the model's
// context (MaxPositions); for in-context learning the oldest demonstrations go first.
using ChainLora.Tokenization;

namespace ChainLora.Tasks;

/// <summary>Token ids of a prompt (BOS included if wanted) and of what follows it.</summary>
public sealed record PromptAndContinuation(IReadOnlyList<int> Prompt, IReadOnlyList<int> Continuation)
{
    public int Length => Prompt.Count + Continuation.Count;
}

/// <summary>A choice example in ids: one (prompt, option) row per candidate.</summary>
public sealed record EncodedChoice(IReadOnlyList<PromptAndContinuation> Candidates, IReadOnlyList<int> Correct)
{
    public int Label => Correct[0];
}

public sealed class PromptEncoder(ITextTokenizer tokenizer, int maxPositions)
{
    /// <summary>"\n\n" between in-context demonstrations and before the test prompt.</summary>
    public const string DemonstrationSeparator = "\n\n";

    public ITextTokenizer Tokenizer => tokenizer;
    public int MaxPositions => maxPositions;

    /// <summary>The demonstrations, each with its gold answer, then the prompt.</summary>
    public static string WithDemonstrations(string prompt, IEnumerable<TaskExample> demonstrations) =>
        string.Join(DemonstrationSeparator, demonstrations.Select(d => d.Demonstration).Append(prompt));

    /// <summary>BOS + the prompt's tokens, the oldest dropped so that at most <paramref name="room"/> remain.</summary>
    public IReadOnlyList<int> Prompt(string text, int room)
    {
        var ids = tokenizer.Encode(text, addBos: true);
        if (room < 2) throw new ArgumentException($"no room for a prompt: {room} positions left of {maxPositions}");
        var head = tokenizer.Encode("", addBos: true).Count; // BOS, or nothing for tokenizers that add none (Qwen)
        return ids.Count <= room ? ids : [.. ids.Take(head), .. ids.Skip(ids.Count - (room - head))];
    }

    /// <summary>The continuation's tokens; one longer than the context less BOS and a prompt token is cut at the end.</summary>
    public IReadOnlyList<int> Continuation(string text)
    {
        var ids = tokenizer.EncodeContinuation(text);
        if (ids.Count == 0) throw new ArgumentException($"'{text}' has no tokens");
        return ids.Count <= maxPositions - 2 ? ids : ids.Take(maxPositions - 2).ToList();
    }

    /// <summary>Every candidate after the prompt (with <paramref name="context"/>, the in-context prompt, in its place).</summary>
    public EncodedChoice Choice(ChoiceExample example, string? context = null)
    {
        var options = example.Options.Select(Continuation).ToList();
        var prompt = Prompt(context ?? example.Prompt, maxPositions - options.Max(o => o.Count));
        return new(options.Select(o => new PromptAndContinuation(prompt, o)).ToList(), example.Correct);
    }

    /// <summary>The prompt and the continuation learned from it: the correct option, or the answer's target.</summary>
    public PromptAndContinuation Target(TaskExample example)
    {
        var target = Continuation(example switch
        {
            ChoiceExample c => c.Options[c.Label],
            AnswerExample a => a.Target,
            _ => throw new ArgumentException($"unknown example type {example.GetType().Name}"),
        });
        return new(Prompt(example.Prompt, maxPositions - target.Count), target);
    }
}
