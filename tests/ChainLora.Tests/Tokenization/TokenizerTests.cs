using System.Text.Json;
using ChainLora.Tokenization;

namespace ChainLora.Tests.Tokenization;

public sealed class TokenizerTests : IDisposable
{
    const string Stories260KModel = "models/stories260K/tok512.model";
    const string Prompt = "Once upon a time, there was a little girl";
    const string Continuation = " named Lily. She loved to play outside in the park. One day, she saw a big, red ball.";

    // From scripts/llama2c_encode.py (llama2.c run.c encode over tok512.bin, no sentencepiece):
    // encode(Prompt, bos=1, eos=0).
    static readonly int[] PromptIds = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421];
    // From the same script: stories260K's greedy continuation of PromptIds (numpy run.c forward),
    // "▁named ▁Lily . ▁She ▁lo ved ▁to ▁play ▁ out s id e ▁in ▁the ▁p ar k . ▁One ▁day , ▁she ▁saw ▁a
    // ▁big , ▁r ed ▁b all ."; also what encode(Continuation) gives without the dummy prefix.
    static readonly int[] GreedyIds =
        [395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432,
         358, 394, 261, 370, 432, 352, 266, 268, 388, 426];

    readonly DirectoryInfo temp = Directory.CreateTempSubdirectory("chainlora-tok-");

    public void Dispose() => temp.Delete(recursive: true);

    static SentencePieceTextTokenizer Stories260K() => SentencePieceTextTokenizer.FromFile(SharedData.Require(Stories260KModel));

    [Fact]
    public void SentencePiece_special_ids_are_Llamas()
    {
        var tok = Stories260K();
        Assert.Equal((512, 1, 2, 0), (tok.VocabSize, tok.BosId, tok.EosId, tok.PadId));
    }

    [Fact]
    public void SentencePiece_encode_prompt_with_BOS_matches_llama2c() =>
        Assert.Equal(PromptIds, Stories260K().Encode(Prompt, addBos: true));

    [Fact]
    public void SentencePiece_encode_without_BOS_drops_only_BOS() =>
        Assert.Equal(PromptIds[1..], Stories260K().Encode(Prompt, addBos: false));

    [Fact]
    public void SentencePiece_encode_empty_with_BOS_is_BOS_alone() =>
        Assert.Equal([1], Stories260K().Encode("", addBos: true));

    [Fact]
    public void SentencePiece_decode_after_BOS_drops_leading_space() =>
        Assert.Equal(Prompt, Stories260K().Decode(PromptIds));

    [Fact]
    public void SentencePiece_decode_greedy_continuation_keeps_leading_space() =>
        Assert.Equal(Continuation, Stories260K().Decode(GreedyIds));

    [Fact]
    public void SentencePiece_decode_drops_BOS_and_EOS() =>
        Assert.Equal(Prompt + Continuation, Stories260K().Decode([.. PromptIds, .. GreedyIds, 2]));

    [Fact]
    public void SentencePiece_encode_continuation_matches_models_greedy_tokens() =>
        Assert.Equal(GreedyIds, Stories260K().EncodeContinuation(Continuation));

    [Fact]
    public void SentencePiece_encode_continuation_has_no_dummy_prefix()
    {
        var tok = Stories260K();
        // scripts/llama2c_encode.py: "▁g re at" with the dummy prefix, "g re at" without.
        Assert.Equal([298, 276, 294], tok.Encode("great", addBos: false));
        Assert.Equal([298, 276, 294], tok.EncodeContinuation(" great"));
        Assert.Equal([428, 276, 294], tok.EncodeContinuation("great"));
        Assert.Equal(" great", tok.Decode(tok.EncodeContinuation(" great")));
        Assert.Equal("great", tok.Decode(tok.EncodeContinuation("great")));
    }

    [Theory]
    [InlineData(Prompt, Continuation)]
    [InlineData("Once", "  upon  a time ")] // space runs collapse and trailing spaces go, as for the whole text
    public void SentencePiece_encode_then_continuation_equals_encode_of_whole(string a, string b)
    {
        var tok = Stories260K();
        Assert.Equal(tok.Encode(a + b, addBos: true), [.. tok.Encode(a, addBos: true), .. tok.EncodeContinuation(b)]);
    }

    [Fact]
    public void SentencePiece_byte_fallback_round_trips()
    {
        var tok = Stories260K();
        // scripts/llama2c_encode.py: 日本 is not in the 512-piece vocabulary, so it is six <0xNN> byte pieces.
        int[] ids = [280, 412, 431, 485, 410, 233, 154, 168, 233, 159, 175];
        Assert.Equal(ids, tok.Encode("café 日本", addBos: false));
        Assert.Equal("café 日本", tok.Decode([1, .. ids]));
    }

    // --- GPT-2 byte-level BPE over a vocabulary built here. Byte b is the id b (its GPT-2
    // bytes_to_unicode symbol, " " -> "Ġ"), three merges follow, then OPT's special tokens at
    // ids that differ from OPT's 0..3 so the test shows they are read from vocab.json.
    const int MergeGt = 256, MergeHe = 257, MergeGthe = 258, SpecialS = 259, SpecialPad = 260, SpecialEos = 261;

    void WriteTinyBpe(string dir)
    {
        var vocab = new Dictionary<string, int>();
        for (var b = 0; b < 256; b++) vocab[ByteSymbol(b)] = b;
        vocab["Ġt"] = MergeGt;
        vocab["he"] = MergeHe;
        vocab["Ġthe"] = MergeGthe;
        vocab["<s>"] = SpecialS;
        vocab["<pad>"] = SpecialPad;
        vocab["</s>"] = SpecialEos;
        vocab["<unk>"] = 262;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\nĠ t\nh e\nĠt he\n");
    }

    /// <summary>GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to 256 + n in byte order.</summary>
    static string ByteSymbol(int b)
    {
        static bool Printable(int c) => c is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
        if (Printable(b)) return ((char)b).ToString();
        var n = Enumerable.Range(0, b).Count(c => !Printable(c));
        return ((char)(256 + n)).ToString();
    }

    Gpt2BpeTextTokenizer TinyBpe()
    {
        WriteTinyBpe(temp.FullName);
        return Gpt2BpeTextTokenizer.FromFiles(Path.Combine(temp.FullName, "vocab.json"), Path.Combine(temp.FullName, "merges.txt"));
    }

    [Fact]
    public void BPE_byte_symbols_are_GPT2s()
    {
        Assert.Equal("Ġ", ByteSymbol(' '));
        Assert.Equal("Ċ", ByteSymbol('\n'));
        Assert.Equal("Ã", ByteSymbol(0xC3));
    }

    [Fact]
    public void BPE_special_ids_come_from_vocab_JSON()
    {
        var tok = TinyBpe();
        Assert.Equal((263, SpecialEos, SpecialEos, SpecialPad), (tok.VocabSize, tok.BosId, tok.EosId, tok.PadId));
    }

    public static TheoryData<string, int[]> BpeCases => new()
    {
        { " the", [MergeGthe] },                             // "Ġ t" then "h e" then "Ġt he"
        { "the the", ['t', MergeHe, MergeGthe] },           // no "Ġ" before the first word, so no "Ġt"
        { "Hi, 42!", ['H', 'i', ',', ' ', '4', '2', '!'] }, // pre-tokens "Hi" "," " 42" "!"
        { "café", ['c', 'a', 'f', 0xC3, 0xA9] },            // é is UTF-8 C3 A9: two byte symbols "Ã" "©"
        { "it's\n", ['i', 't', '\'', 's', '\n'] },
        { "x </s> y", ['x', ' ', SpecialEos, ' ', 'y'] },   // special tokens are never split
    };

    [Theory]
    [MemberData(nameof(BpeCases))]
    public void BPE_encode_matches_hand_derived_ids(string text, int[] ids)
    {
        var tok = TinyBpe();
        Assert.Equal(ids, tok.Encode(text, addBos: false));
        Assert.Equal(ids, tok.EncodeContinuation(text));
        Assert.Equal([SpecialEos, .. ids], tok.Encode(text, addBos: true));
    }

    /// <summary>The same vocabulary as a Hugging Face tokenizer.json: specials as added_tokens, merges in both spellings.</summary>
    void WriteTinyTokenizerJson(string dir, string modelType = "BPE")
    {
        var vocab = new Dictionary<string, int>();
        for (var b = 0; b < 256; b++) vocab[ByteSymbol(b)] = b;
        (vocab["Ġt"], vocab["he"], vocab["Ġthe"]) = (MergeGt, MergeHe, MergeGthe);
        var json = new
        {
            version = "1.0",
            added_tokens = new object[]
            {
                new { id = SpecialS, content = "<s>", special = true },
                new { id = SpecialPad, content = "<pad>", special = true },
                new { id = SpecialEos, content = "</s>", special = true },
                new { id = 262, content = "<unk>", special = true },
            },
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            decoder = new { type = "ByteLevel" },
            model = new { type = modelType, vocab, merges = new object[] { "Ġ t", new[] { "h", "e" }, "Ġt he" } },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), JsonSerializer.Serialize(json));
    }

    [Fact]
    public void Bpe_tokenizer_json_encodes_like_vocab_json_and_merges()
    {
        WriteTinyTokenizerJson(temp.FullName);
        File.WriteAllText(Path.Combine(temp.FullName, "tokenizer_config.json"), """{"eos_token": "</s>", "pad_token": "<pad>"}""");
        var fromJson = Assert.IsType<TokenizerJsonTextTokenizer>(TokenizerLoader.FromDirectory(temp.FullName));
        Assert.Equal((263, SpecialEos, SpecialEos, SpecialPad), (fromJson.VocabSize, fromJson.BosId, fromJson.EosId, fromJson.PadId));
        foreach (var (text, ids) in BpeCases.Select(c => c.Data))
        {
            Assert.Equal(ids, fromJson.Encode(text, addBos: false));
            Assert.Equal(ids, fromJson.Encode(text, addBos: true)); // no post-processor: GPT-2's tokenizer.json adds nothing
            if (!text.Contains("</s>", StringComparison.Ordinal))   // decoding drops special tokens
                Assert.Equal(text, fromJson.Decode(fromJson.Encode(text, addBos: true)));
        }
    }

    [Fact]
    public void A_tokenizer_json_that_is_not_byte_level_bpe_is_named()
    {
        WriteTinyTokenizerJson(temp.FullName, modelType: "WordPiece");
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.FromDirectory(temp.FullName));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("WordPiece", e.Message);
    }

    [Theory]
    [InlineData(" the")]
    [InlineData("the the")]
    [InlineData("Hi, 42!")]
    [InlineData("café")]
    public void BPE_decode_round_trips_and_drops_specials(string text)
    {
        var tok = TinyBpe();
        Assert.Equal(text, tok.Decode(tok.Encode(text, addBos: true)));
        Assert.Equal(text, tok.Decode([SpecialPad, .. tok.Encode(text, addBos: true), SpecialEos]));
    }

    [Fact]
    public void BPE_encode_then_continuation_equals_encode_of_whole()
    {
        var tok = TinyBpe();
        Assert.Equal(tok.Encode("the the", addBos: true), [.. tok.Encode("the", addBos: true), .. tok.EncodeContinuation(" the")]);
    }

    // --- TokenizerLoader

    [Fact]
    public void Loader_tokenizer_model_is_SentencePiece()
    {
        File.Copy(SharedData.Require(Stories260KModel), Path.Combine(temp.FullName, "tokenizer.model"));
        var tok = Assert.IsType<SentencePieceTextTokenizer>(TokenizerLoader.FromDirectory(temp.FullName));
        Assert.Equal(PromptIds, tok.Encode(Prompt, addBos: true));
    }

    [Fact]
    public void Loader_single_other_model_file_is_SentencePiece()
    {
        File.Copy(SharedData.Require(Stories260KModel), Path.Combine(temp.FullName, "tok512.model"));
        Assert.IsType<SentencePieceTextTokenizer>(TokenizerLoader.FromDirectory(temp.FullName));
    }

    [Fact]
    public void Loader_vocab_and_merges_is_GPT2_BPE()
    {
        WriteTinyBpe(temp.FullName);
        var tok = Assert.IsType<Gpt2BpeTextTokenizer>(TokenizerLoader.FromDirectory(temp.FullName));
        Assert.Equal(SpecialEos, tok.BosId);
    }

    [Fact]
    public void Loader_config_JSON_ids_win_over_tokenizer_files()
    {
        WriteTinyBpe(temp.FullName);
        File.WriteAllText(Path.Combine(temp.FullName, "config.json"),
            $$"""{"model_type": "opt", "bos_token_id": {{SpecialS}}, "eos_token_id": {{SpecialEos}}, "pad_token_id": null}""");
        var tok = TokenizerLoader.FromDirectory(temp.FullName);
        Assert.Equal((SpecialS, SpecialEos, SpecialPad), (tok.BosId, tok.EosId, tok.PadId));
    }

    [Theory]
    [InlineData("opt", typeof(Gpt2BpeTextTokenizer))]
    [InlineData("llama", typeof(SentencePieceTextTokenizer))]
    public void Loader_both_kinds_model_type_decides(string modelType, Type expected)
    {
        WriteTinyBpe(temp.FullName);
        File.Copy(SharedData.Require(Stories260KModel), Path.Combine(temp.FullName, "tokenizer.model"));
        File.WriteAllText(Path.Combine(temp.FullName, "config.json"), $$"""{"model_type": "{{modelType}}"}""");
        Assert.IsType(expected, TokenizerLoader.FromDirectory(temp.FullName));
    }

    [Fact]
    public void Loader_both_kinds_without_config_throws()
    {
        WriteTinyBpe(temp.FullName);
        File.WriteAllText(Path.Combine(temp.FullName, "tokenizer.model"), "never read");
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.FromDirectory(temp.FullName));
        Assert.Contains("model_type", e.Message);
        Assert.Contains("no config.json", e.Message);
    }

    [Fact]
    public void Loader_empty_directory_names_directory_and_files_looked_for()
    {
        var e = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.FromDirectory(temp.FullName));
        Assert.Contains(temp.FullName, e.Message);
        Assert.Contains("tokenizer.model", e.Message);
        Assert.Contains("vocab.json", e.Message);
        Assert.Contains("merges.txt", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("this is not a sentencepiece model\n")]
    public void Loader_corrupt_model_names_file(string content)
    {
        var path = Path.Combine(temp.FullName, "tokenizer.model");
        File.WriteAllText(path, content);
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.FromDirectory(temp.FullName));
        Assert.Contains(path, e.Message);
    }
}
