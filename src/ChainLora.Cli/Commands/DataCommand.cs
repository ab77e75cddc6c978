using System.CommandLine;
using ChainLora.IO;
using ChainLora.Tasks;
using ChainLora.Tokenization;

namespace ChainLora.Cli.Commands;

/// <summary>
/// `chainlora data`: what sft training would see, example by example: the text the chat template
/// renders, its tokens, and which of them carry the loss (axolotl's `preprocess --debug`).
/// </summary>
static class DataCommand
{
    public static Command Create(TextWriter output)
    {
        var model = CommonOptions.Model();
        var data = new Option<string>("--data")
        {
            Description = "sft data: a .jsonl, .json or .parquet file, or a folder of train/validation/test files " +
                "(layouts: messages, conversations, prompt + completion, instruction + input + output, text)",
            Required = true,
        };
        var json = new Option<bool>("--json") { Description = "One JSON line per example: {\"text\", \"input_ids\", \"loss_mask\"}" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens per example; longer ones are cut from the end", DefaultValueFactory = _ => 2048 }.AtLeast(2);
        var trainOnInputs = new Option<bool>("--train-on-inputs") { Description = "Train on the prompt, system and user tokens too, not only the answers" };
        var limit = new Option<int>("--limit") { Description = "Show at most this many examples (0: all)", DefaultValueFactory = _ => 0 }.AtLeast(0);
        var command = new Command("data", "Show sft examples as the model is trained on them: rendered text, tokens, and the tokens that carry the loss")
        {
            model, data, json, maxTokens, trainOnInputs, limit,
        };
        command.SetStoppableAction((r, stop) =>
        {
            var error = r.InvocationConfiguration.Error;
            var folder = CommonOptions.ModelFolder(r.GetValue(model)!, stop);
            var tokenizer = TokenizerLoader.FromDirectory(folder);
            var splits = SftData.Read(r.GetValue(data)!);
            var examples = splits.OrderBy(s => s.Key).SelectMany(s => s.Value).ToList();
            // Read when the first conversation is rendered; its fallback is noted at the end.
            var chat = new ModelChatTemplate(folder);
            var render = chat.Renderer;
            var shown = r.GetValue(limit) is > 0 and var n ? examples.Take(n).ToList() : examples;
            var (tokens, trained, cut) = (0L, 0L, 0);
            foreach (var (example, index) in shown.Select((e, i) => (e, i + 1)))
            {
                stop.ThrowIfCancellationRequested();
                var segments = SftEncoder.Segments(example, render, r.GetValue(trainOnInputs));
                var encoded = SftEncoder.Encode(segments, tokenizer, example.IsConversation, r.GetValue(maxTokens));
                (tokens, trained) = (tokens + encoded.InputIds.Length, trained + encoded.TrainedTokens);
                if (encoded.CutTokens > 0)
                {
                    cut++;
                    error.WriteLine($"{example.Location}: cut {encoded.CutTokens} tokens from the end to fit --max-tokens {r.GetValue(maxTokens)}");
                }
                var text = string.Concat(segments.Select(s => s.Text));
                if (r.GetValue(json))
                {
                    output.WriteLine(JsonLines.Serialize(new { text, input_ids = encoded.InputIds, loss_mask = encoded.LossMask.Select(m => m ? 1 : 0) }));
                    continue;
                }
                output.WriteLine($"=== {index}  {example.Location}  {SftData.Name(example.Layout)}: {encoded.InputIds.Length} tokens, {encoded.TrainedTokens} trained");
                output.WriteLine(text);
                output.WriteLine("--- tokens: id 'text' (special tokens: id <special>); [trained]");
                output.WriteLine(string.Join(" ", encoded.InputIds.Select((id, i) =>
                {
                    var decoded = tokenizer.Decode([id]);
                    var piece = decoded.Length == 0 ? $"{id} <special>" : $"{id} '{decoded.ReplaceLineEndings("\\n")}'";
                    return encoded.LossMask[i] ? $"[{piece}]" : piece;
                })));
            }
            if (chat.FallbackNote is { } fallback) error.WriteLine($"note: {fallback}");
            error.WriteLine($"{shown.Count} examples, {tokens} tokens, {trained} trained ({(tokens == 0 ? 0 : 100.0 * trained / tokens):F1}%), {cut} cut");
            return 0;
        });
        return command;
    }
}
