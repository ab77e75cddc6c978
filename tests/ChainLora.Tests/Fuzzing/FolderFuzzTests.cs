using System.Text;
using ChainLora.Chain;
using ChainLora.Export;
using ChainLora.Loading;
using ChainLora.Lora;
using ChainLora.Recipes;
using ChainLora.Tasks;
using ChainLora.Tests.Export;
using ChainLora.Tokenization;
using ChainLora.Training;

namespace ChainLora.Tests.Fuzzing;

/// <summary>
/// Readers of whole folders (a Hugging Face model, a checkpoint, a saved chain) and of the remaining
/// file formats (parquet, SentencePiece, DROP), fed mutations as in <see cref="ReaderFuzzTests"/>:
/// one file of the folder is mutated per input.
/// </summary>
[Collection(nameof(FuzzCollection))]
public class FolderFuzzTests : TempFolderTest
{
    static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    static Dictionary<string, byte[]> Files(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    /// <summary>A tiny OPT with a tiny tokenizer, its weights in shards of a few KB (an index and several files).</summary>
    string WriteShardedModel()
    {
        var tokenizer = PathIn("tok");
        ExportKit.WriteTinyBpe(tokenizer);
        using var model = TinyModels.Opt(seed: 3);
        var dir = PathIn("base");
        MergedExport.Save(model, dir, tokenizer, new MergedExportOptions { MaxShardBytes = 40_000 });
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors.index.json")), "the seed model is not sharded");
        return dir;
    }

    [Fact]
    public void Mutations_of_Hugging_Face_model_folder_with_sharded_weights_are_read_or_refused_as_bad_data()
    {
        var files = Files(WriteShardedModel());
        Fuzz.Folder(files, [.. files.Keys], dir => PretrainedModel.Load(dir).Dispose(),
            alsoAllowed: [typeof(FileNotFoundException)]); // an index naming a shard that is not there
    }

    sealed class Resumed : Exception;

    [Fact]
    public void Mutations_of_checkpoint_folder_are_read_or_refused_as_bad_data()
    {
        var options = new TrainerOptions { Method = TrainingMethod.Cola, LearningRate = 5e-3, Epochs = 3, Seed = 5 };
        var chain = new ChainConfig { Length = 3, Ranks = [8, 4] };
        var lora = new LoraConfig { Bias = LoraBias.LoraOnly };
        var saved = PathIn("ckpt");
        using (var model = TinyModels.Opt())
        {
            var trainer = new ChainTrainer(model, options, lora, chain, new RunPlumbing { CheckpointDir = saved, CheckpointEvery = 2 })
            {
                OnStep = r => { if (r.Step == 4) throw new Resumed(); },
            };
            Assert.Throws<Resumed>(() => trainer.Train(new RandomLmData(8)));
        }
        var files = Files(saved);
        Fuzz.Folder(files, [.. files.Keys], dir =>
        {
            using var model = TinyModels.Opt();
            // Restoring is what is fuzzed; the first step after it proves the state is usable.
            var trainer = new ChainTrainer(model, options, lora, chain, new RunPlumbing { CheckpointDir = Path.Combine(dir, "next"), CheckpointEvery = 2 })
            {
                OnStep = _ => throw new Resumed(),
            };
            trainer.Train(new RandomLmData(8), resumeFrom: dir);
        }, alsoAllowed: [typeof(Resumed), typeof(TrainingDivergedException)]); // finite but absurd weights (1e38) diverge at the first step, as they should
    }

    [Fact]
    public void Mutations_of_saved_chain_folder_exported_merged_are_read_or_refused_as_bad_data()
    {
        var baseDir = WriteShardedModel();
        var runDir = PathIn("run");
        using (var pretrained = PretrainedModel.Load(baseDir))
        {
            var trainer = new ChainTrainer(pretrained.Model, new TrainerOptions { Method = TrainingMethod.Cola, LearningRate = 5e-3, Epochs = 2, Seed = 1 },
                new LoraConfig { Bias = LoraBias.LoraOnly }, new ChainConfig { Length = 2, Ranks = [4, 2] });
            trainer.Train(new RandomLmData(2));
            RunArtifacts.SaveChain(runDir, trainer.Adapters!, baseDir);
        }
        var files = Files(runDir);
        Fuzz.Folder(files, [.. files.Keys], dir =>
        {
            // Beside the run, not in it: an export refuses an output folder inside what it reads.
            var outDir = dir + "-out";
            try
            {
                ExportRecipe.Run(new ExportRecipeOptions { Run = dir, Format = ExportFormat.Merged, Out = outDir });
            }
            catch (ArgumentException e) when (e.Message.StartsWith($"--out {outDir} lies inside the base model folder", StringComparison.Ordinal))
            {
                // chain.json's base_model cut down to a folder above the output (/tmp)
            }
            finally
            {
                if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
            }
        }, alsoAllowed: [typeof(DirectoryNotFoundException)]); // chain.json's base_model mutated into a missing folder
    }

    [Fact]
    public void Mutations_of_parquet_data_file_are_read_or_refused_as_bad_data()
    {
        var path = PathIn("seed.parquet");
        ParquetFiles.Write(path,
            ("sentence", ParquetFiles.Strings([.. Enumerable.Range(0, 6).Select(i => $"it is {(i % 2 == 0 ? "great" : "bad")} {i}")])),
            ("label", ParquetFiles.Longs([.. Enumerable.Range(0, 6).Select(i => (long)((i + 1) % 2))])),
            ("idx", ParquetFiles.Ints([.. Enumerable.Range(0, 6)])));
        Fuzz.Reader(File.ReadAllBytes(path), "train.parquet",
            p => TaskData.Load(TaskRegistry.Find("sst2"), Path.GetDirectoryName(p)!),
            companions: new Dictionary<string, byte[]> { ["dev.tsv"] = Utf8("sentence\tlabel\nfine\t1\n") });
    }

    [Fact]
    public void Mutations_of_SentencePiece_model_are_read_or_refused_as_bad_data()
    {
        var seed = File.ReadAllBytes(SharedData.Require("models/stories260K/tok512.model"));
        Fuzz.Reader(seed, "tokenizer.model", p =>
        {
            var tokenizer = SentencePieceTextTokenizer.FromFile(p);
            var ids = tokenizer.Encode("Once upon a time, a little girl named Lily went to the park.", addBos: true);
            tokenizer.Decode(ids);
        });
    }

    [Fact]
    public void Mutations_of_DROP_json_are_read_or_refused_as_bad_data() =>
        Fuzz.Reader(Utf8("""
            {"nfl_1": {"passage": "The Bears scored 7 points in the first quarter and 3 in the second.",
              "qa_pairs": [{"question": "How many points in the first quarter?", "query_id": "q1",
                            "answer": {"number": "7", "date": {"day": "", "month": "", "year": ""}, "spans": []}},
                           {"question": "Who scored?", "query_id": "q2",
                            "answer": {"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["The Bears"]}}]}}
            """), "drop_dataset_train.json", p => TaskData.Load(TaskRegistry.Find("drop"), Path.GetDirectoryName(p)!),
            companions: new Dictionary<string, byte[]>
            {
                ["drop_dataset_dev.json"] = Utf8("""{"h_1": {"passage": "In 1990 it rained.", "qa_pairs": [{"question": "When?", "query_id": "q3", "answer": {"number": "", "date": {"day": "", "month": "", "year": "1990"}, "spans": []}}]}}"""),
            });
}
