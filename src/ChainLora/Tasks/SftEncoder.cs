// An sft example as token ids with a loss mask: what carries the loss and what is only context.
// A conversation is rendered by the model's chat template; the assistant's part of turn k is found
// by rendering the turns before it with the generation prompt (the text up to where the model starts
// to answer) and the turns through it (the answer, with the template's end-of-turn marker): the
// difference is the answer, and it alone carries the loss unless --train-on-inputs. Plain
// prompt/completion pairs train on the completion, text on all of it; both end with EOS, as TRL adds it.
using ChainLora.Tokenization;

namespace ChainLora.Tasks;

/// <summary>A run of text and whether its tokens carry the loss.</summary>
public sealed record SftSegment(string Text, bool Trained);

/// <summary>
/// Token ids, one loss flag per id, and how many tokens truncation cut from the end (0 when none).
/// </summary>
public sealed record SftEncoded(int[] InputIds, bool[] LossMask, int CutTokens)
{
    public int TrainedTokens => LossMask.Count(m => m);
}

/// <summary>A chat template: the text of <c>turns</c>, with the assistant's generation prompt appended when asked.</summary>
public delegate string ChatRenderer(IReadOnlyList<SftTurn> turns, bool addGenerationPrompt);

/// <summary>
/// The chat template of the model in a folder, read when the first conversation is rendered
/// (prompt/completion and text data need none); <see cref="Used"/> says whether it was, and which.
/// </summary>
public sealed class ModelChatTemplate(string modelDirectory)
{
    readonly Lazy<ChatTemplate> template = new(() => ChatTemplate.FromDirectory(modelDirectory));

    public ChatRenderer Renderer => (turns, generation) => SftEncoder.Renderer(template.Value)(turns, generation);

    /// <summary>The template, once a conversation was rendered; null before.</summary>
    public ChatTemplate? Used => template.IsValueCreated ? template.Value : null;

    /// <summary>A line for the run's note when conversations were rendered by the ChatML fallback; null otherwise.</summary>
    public string? FallbackNote => Used is { IsFallback: true } used
        ? $"{used.Origin}: conversations rendered as ChatML, transformers' fallback before v4.43 (docs/CHAT_TEMPLATES.md)"
        : null;
}

public static class SftEncoder
{
    /// <summary><paramref name="template"/> as a renderer of turns (apply_chat_template with tokenize=False).</summary>
    public static ChatRenderer Renderer(ChatTemplate template) =>
        (turns, generation) => template.Render([.. turns.Select(t => new ChatMessage(t.Role, t.Content))], generation);

    /// <summary>
    /// <paramref name="example"/> as ids and loss mask: <see cref="Segments"/> then <see cref="Encode(IReadOnlyList{SftSegment}, ITextTokenizer, bool, int)"/>.
    /// </summary>
    public static SftEncoded Encode(SftExample example, ITextTokenizer tokenizer, ChatRenderer? render, int maxTokens, bool trainOnInputs = false) =>
        Encode(Segments(example, render, trainOnInputs), tokenizer, example.IsConversation, maxTokens);

    /// <summary>
    /// The segments of <paramref name="example"/>: a conversation through <paramref name="render"/>,
    /// each assistant answer trained on (everything when <paramref name="trainOnInputs"/>).
    /// Throws when the template renders earlier turns differently once later ones follow, so that no
    /// answer's text can be told apart.
    /// </summary>
    public static IReadOnlyList<SftSegment> Segments(SftExample example, ChatRenderer? render, bool trainOnInputs = false)
    {
        if (!example.IsConversation)
            return example.Text is { } text
                ? [new SftSegment(text, true)]
                : [new SftSegment(example.Prompt!, trainOnInputs), new SftSegment(example.Completion!, true)];
        if (render is null)
            throw new InvalidOperationException($"{example.Location}: a conversation needs the model's chat template");
        return SegmentsOf(example, (turns, generation) =>
        {
            try
            {
                return render(turns, generation);
            }
            catch (ChatTemplateException e)
            {
                // The template raised or failed on this conversation: name the example too.
                throw new ChatTemplateException($"{example.Location}: {e.Message}", e.TemplateError, e);
            }
        }, trainOnInputs);
    }

    static IReadOnlyList<SftSegment> SegmentsOf(SftExample example, ChatRenderer render, bool trainOnInputs)
    {
        var turns = example.Turns!;
        var full = render(turns, false);
        var segments = new List<SftSegment>();
        var cursor = 0;
        for (var k = 0; k < turns.Count; k++)
        {
            if (turns[k].Role != SftTurn.Assistant) continue;
            var prompt = render([.. turns.Take(k)], true);
            var through = render([.. turns.Take(k + 1)], false);
            if (!prompt.StartsWith(full[..cursor], StringComparison.Ordinal) || !through.StartsWith(prompt, StringComparison.Ordinal)
                || !full.StartsWith(through, StringComparison.Ordinal))
                throw new InvalidDataException($"{example.Location}: the chat template renders turn {k + 1} (assistant) differently " +
                    "once later turns follow, so its answer cannot be told apart for the loss mask; use --train-on-inputs or plain prompt/completion data");
            segments.Add(new SftSegment(prompt[cursor..], trainOnInputs));
            segments.Add(new SftSegment(through[prompt.Length..], true));
            cursor = through.Length;
        }
        if (cursor < full.Length) segments.Add(new SftSegment(full[cursor..], trainOnInputs));
        return [.. segments.Where(s => s.Text.Length > 0)];
    }

    /// <summary>
    /// Ids and loss mask of <paramref name="segments"/>, each segment tokenized as a continuation of
    /// the one before. A conversation's template writes its own BOS text; plain data gets the
    /// tokenizer's BOS and, trained, its EOS. Cut to <paramref name="maxTokens"/> from the end.
    /// </summary>
    public static SftEncoded Encode(IReadOnlyList<SftSegment> segments, ITextTokenizer tokenizer, bool conversation, int maxTokens)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        var ids = new List<int>();
        var mask = new List<bool>();
        for (var i = 0; i < segments.Count; i++)
        {
            var piece = i == 0 ? tokenizer.Encode(segments[i].Text, addBos: !conversation) : tokenizer.EncodeContinuation(segments[i].Text);
            ids.AddRange(piece);
            mask.AddRange(piece.Select((_, j) => segments[i].Trained && !(i == 0 && !conversation && j == 0)));
        }
        if (!conversation)
        {
            ids.Add(tokenizer.EosId);
            mask.Add(true);
        }
        var cut = Math.Max(0, ids.Count - maxTokens);
        return new SftEncoded([.. ids.Take(ids.Count - cut)], [.. mask.Take(mask.Count - cut)], cut);
    }
}
