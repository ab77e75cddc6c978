// Scores a model on task examples, zero-shot or with k in-context demonstrations:
//   choice tasks   the candidate with the highest mean option-token log-probability; accuracy
//   generation     greedy decoding of at most 50 tokens, stopping at a newline or EOS; SQuAD F1 and
//                  exact match, each the best over the gold answers
//   lm             NLL per token of held-out windows, and its exponential, the perplexity
//   sft            NLL per response token of held-out examples (ResponseLoss), and its perplexity
using ChainLora.Models;
using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Evaluation;

public sealed record EvalOptions
{
    /// <summary>k in-context demonstrations per test example, drawn from <see cref="DemonstrationPool"/>; 0 is zero-shot.</summary>
    public int Demonstrations { get; init; }
    public IReadOnlyList<TaskExample> DemonstrationPool { get; init; } = [];
    public long Seed { get; init; }
    /// <summary>Padded tokens per scoring batch.</summary>
    public int BatchTokens { get; init; } = 8192;
    public int MaxNewTokens { get; init; } = 50;
    /// <summary>Prompts decoded together.</summary>
    public int GenerationBatch { get; init; } = 16;
}

/// <summary>Metrics by name ("accuracy"; "f1", "exact_match"; "nll_per_token", "perplexity") and what the model answered.</summary>
public sealed record EvalOutcome(IReadOnlyDictionary<string, double> Metrics, IReadOnlyList<string> Predictions);

public static class TaskEvaluator
{
    /// <summary>Metrics of <paramref name="task"/>'s test sample (or its dev sample); null for an empty dev sample.</summary>
    public static EvalOutcome? Evaluate(this PreparedTask task, CausalLM model, ITextTokenizer tokenizer, EvalOptions options, bool dev = false)
    {
        if (task.Windows is { } w)
        {
            if (options.Demonstrations > 0) throw new ArgumentException("in-context demonstrations do not apply to the lm task");
            var windows = dev ? w.Dev : w.Test;
            return windows.Count == 0 ? null : Text(model, windows);
        }
        if (task.Sft is { } sft)
        {
            if (options.Demonstrations > 0) throw new ArgumentException("in-context demonstrations do not apply to the sft task");
            var rows = dev ? sft.Dev : sft.Test;
            return rows.Count == 0 ? null : ResponseLoss.Evaluate(model, rows, tokenizer.PadId, options.BatchTokens);
        }
        var examples = dev ? task.Examples!.Dev : task.Examples!.Test;
        return examples.Count == 0 ? null
            : Evaluate(model, tokenizer, examples, options with { DemonstrationPool = task.Examples.Train });
    }

    public static EvalOutcome Evaluate(CausalLM model, ITextTokenizer tokenizer, IReadOnlyList<TaskExample> examples, EvalOptions options)
    {
        if (examples.Count == 0) throw new ArgumentException("no examples to evaluate");
        if (options.Demonstrations > 0 && options.DemonstrationPool.Count < options.Demonstrations)
            throw new ArgumentException(
                $"{options.Demonstrations} in-context demonstrations asked for, but the train sample holds {options.DemonstrationPool.Count}");
        model.eval();
        var encoder = new PromptEncoder(tokenizer, model.MaxPositions);
        var prompts = examples.Select((e, i) => options.Demonstrations == 0
            ? e.Prompt
            : PromptEncoder.WithDemonstrations(e.Prompt, Sampling.Demonstrations(options.DemonstrationPool, options.Demonstrations, options.Seed, i)))
            .ToList();
        return examples[0] switch
        {
            ChoiceExample => Choose(model, encoder, examples.Cast<ChoiceExample>().ToList(), prompts, options),
            AnswerExample => Generate(model, encoder, examples.Cast<AnswerExample>().ToList(), prompts, options),
            _ => throw new ArgumentException($"unknown example type {examples[0].GetType().Name}"),
        };
    }

    static EvalOutcome Choose(CausalLM model, PromptEncoder encoder, IReadOnlyList<ChoiceExample> examples, IReadOnlyList<string> prompts, EvalOptions options)
    {
        var encoded = examples.Select((e, i) => encoder.Choice(e, prompts[i])).ToList();
        var scores = ContinuationScoring.ScoreSharingPrompts(model, encoded.SelectMany(e => e.Candidates).ToList(), options.BatchTokens, encoder.Tokenizer.PadId);
        var predictions = new List<string>();
        var right = 0;
        var offset = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            var count = examples[i].Options.Count;
            var best = Enumerable.Range(0, count).MaxBy(c => scores[offset + c]);
            offset += count;
            if (examples[i].Correct.Contains(best)) right++;
            predictions.Add(examples[i].Options[best]);
        }
        return new(new Dictionary<string, double> { ["accuracy"] = (double)right / examples.Count }, predictions);
    }

    static EvalOutcome Generate(CausalLM model, PromptEncoder encoder, IReadOnlyList<AnswerExample> examples, IReadOnlyList<string> prompts, EvalOptions options)
    {
        var tokenizer = encoder.Tokenizer;
        var room = model.MaxPositions - options.MaxNewTokens;
        var ids = prompts.Select(p => encoder.Prompt(p, room)).ToList();
        var generation = new GenerationOptions(options.MaxNewTokens, StopIds: LineEnds(tokenizer));
        var predictions = new string[examples.Count];
        // Similar lengths together: less left padding.
        foreach (var batch in Enumerable.Range(0, examples.Count).OrderBy(i => ids[i].Count).Chunk(options.GenerationBatch))
        {
            var produced = Generation.Generate(model, batch.Select(i => ids[i]).ToList(), generation, tokenizer.PadId);
            for (var k = 0; k < batch.Length; k++)
                predictions[batch[k]] = tokenizer.Decode(produced[k]).Split('\n')[0].Trim();
        }
        var f1 = examples.Select((e, i) => AnswerMetrics.BestF1(predictions[i], e.Answers)).Average();
        var em = examples.Select((e, i) => AnswerMetrics.BestExactMatch(predictions[i], e.Answers) ? 1.0 : 0.0).Average();
        return new(new Dictionary<string, double> { ["f1"] = f1, ["exact_match"] = em }, predictions);
    }

    /// <summary>EOS and every token whose text holds a line break: decoding stops at the answer's end.</summary>
    public static HashSet<int> LineEnds(ITextTokenizer tokenizer)
    {
        var stops = new HashSet<int> { tokenizer.EosId };
        for (var id = 0; id < tokenizer.VocabSize; id++)
            if (tokenizer.Decode([id]).Contains('\n')) stops.Add(id);
        return stops;
    }

    /// <summary>Held-out NLL per token over windows that start with BOS.</summary>
    public static EvalOutcome Text(CausalLM model, IReadOnlyList<int[]> windows)
    {
        if (windows.Count == 0) throw new ArgumentException("no text windows to evaluate");
        model.eval();
        var result = Perplexity.OfWindows(model, windows);
        return new(new Dictionary<string, double> { ["nll_per_token"] = result.NllPerToken, ["perplexity"] = result.Perplexity }, []);
    }
}
