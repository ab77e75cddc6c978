using System.Text;
using ChainLora.Experiments;
using ChainLora.IO;
using ChainLora.Models;
using ChainLora.Tasks;
using static TorchSharp.torch;

namespace ChainLora.Tests.Fuzzing;

/// <summary>
/// Every reader of user files, fed mutations of a valid file (see <see cref="Fuzz"/>): each input is
/// accepted or refused with InvalidDataException, never another exception type, a crash or a hang.
/// </summary>
[Collection(nameof(FuzzCollection))]
public class ReaderFuzzTests
{
    static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Mutations_of_safetensors_are_read_or_refused_as_bad_data()
    {
        var path = Path.Combine(Path.GetTempPath(), $"seed-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(path, new Dictionary<string, Tensor>
            {
                ["a"] = arange(12, ScalarType.Float32).view(3, 4),
                ["b"] = ones(5, ScalarType.BFloat16),
                ["c"] = tensor(new long[] { 7, 8 }),
            });
            var seed = File.ReadAllBytes(path);
            Fuzz.Reader(seed, "model.safetensors", p => { foreach (var t in SafeTensors.Load(p).Values) t.Dispose(); });
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Mutations_of_llama2c_checkpoint_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(File.ReadAllBytes(Path.Combine(Fixtures.Reference("llama2c-tiny"), "model.bin")), "model.bin",
            p => { foreach (var t in Llama2cCheckpoint.Load(p).Tensors.Values) t.Dispose(); });

    [Fact]
    public void Mutations_of_config_json_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8((TinyModels.LlamaConfig with { RopeScaling = new RopeScaling { RopeType = "llama3", Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 32 } }).ToJson()),
            "config.json", p => LlamaConfig.FromFile(p));

    [Fact]
    public void Mutations_of_experiment_config_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8("""
            { "model": "m", "data_root": ".", "tasks": [{ "name": "sst2", "data": "d" }],
              "methods": [{ "name": "LoRA", "kind": "lora" }, { "name": "COLA", "kind": "cola", "chain_length": 2, "ranks": [8, 4] }],
              "learning_rates": [1e-3], "seeds": [0, 1], "epochs": 5, "num_train": 1000 }
            """), "grid.json", p => ExperimentConfig.Load(p));

    [Fact]
    public void Mutations_of_job_spec_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8(ExperimentConfig.Serialize(new JobSpec
        {
            Options = new()
            {
                Task = "sst2", Data = "/d", Model = "/m", Sizes = new(100, 10, 10), BatchSize = 8,
                Trainer = new() { Method = ChainLora.Training.TrainingMethod.Cola, LearningRate = 1e-3, Epochs = 5 }, Chain = new() { Length = 2, Ranks = [8, 4] },
            },
            Method = "COLA", Kind = MethodKind.Cola, Out = "/o",
        })), "spec.json", p => JobSpec.Load(p));

    [Fact]
    public void Mutations_of_SuperGlue_jsonl_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8(string.Join("\n", Enumerable.Range(0, 4).Select(i =>
                $$"""{"premise": "The man fell {{i}}.", "choice1": "He slipped.", "choice2": "He sang.", "question": "cause", "label": {{i % 2}}, "idx": {{i}}}"""))),
            "train.jsonl", p => TaskData.Load(TaskRegistry.Find("copa"), Path.GetDirectoryName(p)!),
            companions: new Dictionary<string, byte[]>
            {
                ["val.jsonl"] = Utf8("""{"premise": "It rained.", "choice1": "We stayed in.", "choice2": "We swam.", "question": "effect", "label": 0, "idx": 9}"""),
            });

    [Fact]
    public void Mutations_of_GLUE_tsv_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8("sentence\tlabel\nit is great\t1\nit is bad\t0\nso so\t1\n"), "train.tsv",
            p => TaskData.Load(TaskRegistry.Find("sst2"), Path.GetDirectoryName(p)!),
            companions: new Dictionary<string, byte[]> { ["dev.tsv"] = Utf8("sentence\tlabel\nfine\t1\n") });

    [Fact]
    public void Mutations_of_PyTorch_model_bin_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(File.ReadAllBytes(Path.Combine(Fixtures.PyTorch("views"), "pytorch_model.bin")), "pytorch_model.bin", p =>
        {
            using var checkpoint = PyTorchCheckpoint.Open(p);
            foreach (var t in checkpoint.Tensors.Values)
            {
                using var destination = empty([.. t.Shape], ScalarType.Float32);
                checkpoint.CopyTo(t.Name, destination);
            }
        }, seconds: 20);

    [Fact]
    public void Mutations_of_SQuAD_json_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8("""
            {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "The cat sat on the mat.",
              "qas": [{"id": "1", "question": "Where?", "answers": [{"answer_start": 15, "text": "the mat"}]},
                      {"id": "2", "question": "Who?", "answers": [{"answer_start": 4, "text": "cat"}]}]}]}]}
            """), "train-v1.1.json", p => TaskData.Load(TaskRegistry.Find("squad"), Path.GetDirectoryName(p)!),
            companions: new Dictionary<string, byte[]>
            {
                ["dev-v1.1.json"] = Utf8("""{"version": "1.1", "data": [{"title": "D", "paragraphs": [{"context": "A dog.", "qas": [{"id": "3", "question": "What?", "answers": [{"answer_start": 2, "text": "dog"}]}]}]}]}"""),
            });

    [Fact]
    public void Mutations_of_PEFT_adapter_config_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8("""
            { "peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
              "bias": "none", "use_rslora": false, "rank_pattern": {"layers.0.q_proj": 4}, "alpha_pattern": {},
              "base_model_name_or_path": "facebook/opt-125m", "task_type": "CAUSAL_LM", "fan_in_fan_out": false }
            """), "adapter_config.json", p => ChainLora.Export.PeftAdapterConfig.Read(p));

    [Fact]
    public void Mutations_of_GPT2_bpe_tokenizer_files_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8("""{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "ab": 6, "Ġa": 7}"""), "vocab.json",
            p => ChainLora.Tokenization.TokenizerLoader.FromDirectory(Path.GetDirectoryName(p)!),
            companions: new Dictionary<string, byte[]> { ["merges.txt"] = Utf8("#version: 0.2\na b\n") });

    static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    [Fact]
    public void Mutations_of_tokenizer_json_files_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(File.ReadAllBytes(Fixture("tokenizers", "sp-legacy", "tokenizer.json")), "tokenizer.json", p =>
        {
            var tokenizer = ChainLora.Tokenization.TokenizerLoader.FromDirectory(Path.GetDirectoryName(p)!);
            tokenizer.Decode(tokenizer.Encode("<s>Hi there, café 日本 <|end|>\n 42", addBos: true));
        }, seconds: 20);

    [Fact]
    public void Mutations_of_chat_templates_and_tokenizer_configs_are_read_or_refused_as_bad_data() =>
        Fuzz.Folder(new Dictionary<string, byte[]>
        {
            ["tokenizer_config.json"] = File.ReadAllBytes(Fixture("chat_templates", "mistral-7b-instruct-v0.3", "tokenizer_config.json")),
            ["chat_template.jinja"] = Encoding.UTF8.GetBytes(System.Text.Json.JsonDocument.Parse(
                File.ReadAllBytes(Fixture("chat_templates", "qwen3", "tokenizer_config.json"))).RootElement.GetProperty("chat_template").GetString()!),
        }, ["tokenizer_config.json", "chat_template.jinja"], dir =>
        {
            var template = ChainLora.Tokenization.ChatTemplate.FromDirectory(dir);
            template.Render([new("system", "Be brief."), new("user", "Hi"), new("assistant", "<think>\nx\n</think>\n\nHello")], addGenerationPrompt: true);
        }, alsoAllowed: [typeof(ChainLora.Tokenization.ChatTemplateException)]);
}
