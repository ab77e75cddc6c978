// A conversation with a model through its chat template: each user turn is appended, the template
// renders the whole conversation with the generation prompt, and the reply is generated (streamed as
// it comes) until an end-of-turn token: the tokenizer's EOS, generation_config.json's eos_token_id,
// or one of the end-of-turn markers today's families ship when the tokenizer holds it as one token.
using System.Text;
using System.Text.Json;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Evaluation;

public sealed class ChatSession(CausalLM model, ITextTokenizer tokenizer, ChatTemplate template, IReadOnlySet<int> endOfTurn)
{
    /// <summary>End-of-turn markers of Llama 3, ChatML (Qwen), Gemma, Phi-3 and Llama 2 / Mistral.</summary>
    static readonly string[] EndOfTurnMarkers = ["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>"];

    readonly List<SftTurn> turns = [];

    public IReadOnlyList<SftTurn> Turns => turns;

    public IReadOnlySet<int> EndOfTurn => endOfTurn;

    /// <summary>
    /// A session on the model folder <paramref name="dir"/>: its template (or the ChatML fallback) and its
    /// end-of-turn ids. A system prompt, when given, opens the conversation.
    /// </summary>
    public static ChatSession For(CausalLM model, ITextTokenizer tokenizer, string dir, string? system = null)
    {
        var session = new ChatSession(model, tokenizer, ChatTemplate.FromDirectory(dir), EndOfTurnIds(tokenizer, dir));
        if (!string.IsNullOrEmpty(system)) session.turns.Add(new SftTurn(SftTurn.System, system));
        return session;
    }

    /// <summary>The tokenizer's EOS, generation_config.json's eos_token_id (a number or a list), and each marker that is one special token.</summary>
    public static IReadOnlySet<int> EndOfTurnIds(ITextTokenizer tokenizer, string dir)
    {
        var ids = new HashSet<int> { tokenizer.EosId };
        var generationConfig = Path.Combine(dir, "generation_config.json");
        if (File.Exists(generationConfig))
        {
            using var doc = JsonFile.Parse(generationConfig);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("eos_token_id", out var eos))
                foreach (var e in eos.ValueKind == JsonValueKind.Array ? [.. eos.EnumerateArray()] : new[] { eos })
                    if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id)) ids.Add(id);
        }
        foreach (var marker in EndOfTurnMarkers)
            if (tokenizer.EncodeContinuation(marker) is [var single] && tokenizer.Decode([single]).Length == 0) ids.Add(single);
        return ids;
    }

    /// <summary>
    /// Adds <paramref name="user"/>'s turn, generates the reply (each new piece of text passed to
    /// <paramref name="onText"/> as it is decoded) and adds it; returns the reply.
    /// </summary>
    public string Reply(string user, GenerationOptions options, Action<string>? onText = null)
    {
        turns.Add(new SftTurn(SftTurn.User, user));
        var prompt = template.Render([.. turns.Select(t => new ChatMessage(t.Role, t.Content))], addGenerationPrompt: true);
        var ids = tokenizer.Encode(prompt, addBos: false);
        var room = model.MaxPositions - ids.Count;
        if (room < 1)
        {
            turns.RemoveAt(turns.Count - 1);
            throw new ArgumentException($"the conversation has {ids.Count} tokens, the model's context is {model.MaxPositions}");
        }
        var produced = new List<int>();
        var shown = 0;
        var reply = new StringBuilder();
        void Stream(int _, int id)
        {
            produced.Add(id);
            var text = tokenizer.Decode(produced);
            // A character split across tokens decodes to U+FFFD until its last byte arrives.
            if (text.Length > shown && !text.EndsWith('\uFFFD'))
            {
                onText?.Invoke(text[shown..]);
                shown = text.Length;
            }
        }
        Generation.Generate(model, [ids], options with
        {
            MaxNewTokens = Math.Min(options.MaxNewTokens, room),
            StopIds = endOfTurn,
            OnToken = Stream,
        }, tokenizer.PadId);
        var final = tokenizer.Decode(produced);
        if (final.Length > shown) onText?.Invoke(final[shown..]);
        turns.Add(new SftTurn(SftTurn.Assistant, final));
        return final;
    }
}
