using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ChainLora.IO;
using ChainLora.Models;
using static TorchSharp.torch;

namespace ChainLora.Tests.Cli;

/// <summary>
/// The README's "Your own chat data" example, its lines run as written (MODEL and the relative paths
/// placed in a temp folder) on a tiny random Qwen2 checkpoint written here with Qwen2.5's chat
/// template and a byte-level BPE tokenizer.
/// </summary>
public sealed partial class ReadmeChatExampleTests : TempFolderTest
{
    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    /// <summary>A Qwen2 model folder: config.json, random tied weights, tokenizer.json (ids up to 505) and Qwen2.5-Instruct's tokenizer_config.json.</summary>
    string TinyQwen()
    {
        var dir = Directory.CreateDirectory(PathIn("qwen-tiny")).FullName;
        var config = new LlamaConfig
        {
            ModelType = "qwen2", VocabSize = 512, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, MaxPositionEmbeddings = 512, RmsNormEps = 1e-6, RopeTheta = 1e6, TieWordEmbeddings = true,
            BosTokenId = ConfigJson.Number(501), EosTokenId = ConfigJson.Number(503),
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJson());
        manual_seed(11);
        using var model = new LlamaForCausalLM(config);
        // Matrices N(0, 0.02) (transformers' initializer_range), the tied embedding N(0, 0.25): the untrained model
        // starts a little above ln(512) nats, and its head can express confident predictions once trained
        // (with 0.02 embeddings a tied head's logits could never exceed about 0.7).
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (p.dim() == 2) p.normal_(0, name.Contains("embed_tokens") ? 0.25 : 0.02);
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), model.state_dict());
        File.Copy(Fixture("tokenizers", "qwen2", "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        File.Copy(Fixture("chat_templates", "qwen2.5-instruct", "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        return dir;
    }

    static readonly string[] Animals =
    [
        "cat", "dog", "bird", "fish", "frog", "duck", "bear", "fox", "wolf", "deer", "goat", "lamb", "hen", "owl", "bee", "ant",
        "mole", "seal", "crab", "toad",
    ];

    static string Conversation(string animal, string question) =>
        $$"""{"messages": [{"role": "user", "content": "{{question.Replace("X", animal)}}"}, {"role": "assistant", "content": "The {{animal}} ran to the park and played."}]}""";

    /// <summary>chats/train.jsonl (40 conversations: 16 animals asked two ways, 8 of them a third) and chats/validation.jsonl (8 with other animals).</summary>
    void WriteChats()
    {
        Write("chats/train.jsonl", string.Join("\n", Animals.Skip(4).SelectMany(a => new[] { Conversation(a, "What did the X do?"), Conversation(a, "Where did the X go?") })
            .Concat(Animals.Skip(4).Take(8).Select(a => Conversation(a, "Tell me about the X.")))) + "\n");
        Write("chats/validation.jsonl", string.Join("\n", Animals.Take(4).SelectMany(a => new[] { Conversation(a, "What did the X do?"), Conversation(a, "Where did the X go?") })) + "\n");
    }

    [GeneratedRegex("\"([^\"]*)\"|(\\S+)")]
    private static partial Regex Words();

    /// <summary>The `chainlora ...` lines of the README block after the chat-example marker, as argument lists.</summary>
    static List<string[]> ReadmeLines()
    {
        var readme = File.ReadAllText(RepoFiles.Require("README.md"));
        var block = readme[readme.IndexOf("<!-- chat-example -->", StringComparison.Ordinal)..];
        block = block[(block.IndexOf("```bash\n", StringComparison.Ordinal) + 8)..];
        block = block[..block.IndexOf("```", StringComparison.Ordinal)];
        return [.. block.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            Assert.StartsWith("chainlora ", line);
            return Words().Matches(line).Skip(1).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).ToArray();
        })];
    }

    [Fact]
    public void The_chat_example_trains_exports_scores_and_talks_and_its_adapter_lowers_the_answer_loss()
    {
        var model = TinyQwen();
        WriteChats();
        var lines = ReadmeLines();
        Assert.Equal(["data", "train", "export", "eval", "chat"], lines.Select(l => l[0]));
        string Place(string word) => word == "MODEL" ? model
            : word.Contains('/') || word.EndsWith(".jsonl", StringComparison.Ordinal) ? PathIn(word) : word;

        var outputs = new List<string>();
        foreach (var line in lines)
        {
            var (exit, output, error) = CliHarness.Run([.. line.Select(Place)]);
            Assert.True(exit == 0, $"chainlora {string.Join(' ', line)}: exit {exit}\n{error}");
            outputs.Add(output + error);
        }

        // data: Qwen2.5's template with its default system prompt, the answer marked as trained.
        Assert.Contains("You are Qwen, created by Alibaba Cloud.", outputs[0]);
        // train: a chain of two links over packed rows.
        var result = JsonNode.Parse(File.ReadAllText(PathIn("runs/chat/result.json")))!;
        Assert.Equal(2, result["training"]!["links"]!.AsArray().Count);
        Assert.True((bool)result["hyperparameters"]!["pack"]!);
        Assert.Contains("note: packed 40 train examples into", outputs[1]);
        // export: one PEFT adapter of rank 8 + 8.
        var adapterConfig = JsonNode.Parse(File.ReadAllText(PathIn("adapters/chat/adapter_config.json")))!;
        Assert.Equal(16, (int)adapterConfig["r"]!);
        // eval: the adapter lowers the held-out answer loss against the base model, and answers are written.
        var (code, baseOutput, baseError) = CliHarness.Run("eval", "--model", model, "--task", "sft", "--data", PathIn("chats/"), "--json");
        Assert.True(code == 0, baseError);
        var before = (double)JsonNode.Parse(baseOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!["test"]!["response_nll"]!;
        var after = double.Parse(Regex.Match(outputs[3], @"response_nll (\d+\.\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(after < before - 1, $"held-out response NLL {before:F4} without the adapter, {after:F4} with it");
        var answers = File.ReadAllLines(PathIn("answers.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(8, answers.Count);
        // chat: the same conversation as the held-out "What did the cat do?" gets the reply eval's samples
        // decoded for it (both greedy; chat may go on for 256 tokens where the samples stop at 128).
        var cat = Assert.Single(answers, a => ((string)a["prompt"]!).Contains("What did the cat do?"));
        Assert.StartsWith((string)cat["generated"]!, outputs[4]);
        Assert.NotEmpty(outputs[4]);
    }
}
