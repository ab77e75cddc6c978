using System.Text;
using System.Text.Json;
using ChainLora.Tokenization;

namespace ChainLora.Tests.Tokenization;

/// <summary>
/// tokenizer.json in the layouts of Llama 3, Qwen2/2.5/3, Llama 2 / Mistral / Phi-3 (SentencePiece
/// converted), Mistral v0.3 (Metaspace) and Gemma, against scripts/hf_tokenizer_reference.py (an
/// independent Python transcription of huggingface/tokenizers) through the fixtures
/// scripts/make_tokenizer_fixtures.py wrote, plus hand-derived cases.
/// </summary>
public sealed class TokenizerJsonTests : TempFolderTest
{
    static readonly string[] Layouts = ["llama3", "qwen2", "sp-legacy", "metaspace", "gemma"];

    static string FixtureDir(string layout) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", layout);

    static TokenizerJsonTextTokenizer Load(string layout) =>
        TokenizerJsonTextTokenizer.FromFile(Path.Combine(FixtureDir(layout), "tokenizer.json"));

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var layout in Layouts)
        {
            var count = Fixtures.Json(Path.Combine(FixtureDir(layout), "expected.json")).GetProperty("cases").GetArrayLength();
            for (var i = 0; i < count; i++) data.Add(layout, i);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encodes_and_decodes_as_the_reference_does(string layout, int index)
    {
        var expected = Fixtures.Json(Path.Combine(FixtureDir(layout), "expected.json")).GetProperty("cases")[index];
        var text = expected.GetProperty("text").GetString()!;
        var tok = Load(layout);
        int[] Ids(string name) => expected.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();

        Assert.Equal(Ids("ids"), tok.Encode(text, addBos: false));
        Assert.Equal(Ids("with_special_tokens"), tok.Encode(text, addBos: true));
        Assert.Equal(Ids("continuation"), tok.EncodeContinuation(text));
        Assert.Equal(expected.GetProperty("decoded").GetString(), tok.Decode(Ids("with_special_tokens")));
    }

    [Fact]
    public void Special_tokens_in_the_text_are_single_ids()
    {
        var llama3 = Load("llama3");
        Assert.True(llama3.TryGetId("<|eot_id|>", out var eot));
        Assert.Equal([(int)'a', eot, 'b'], llama3.Encode("a<|eot_id|>b", addBos: false)); // bytes a, b are ids 97, 98
        var qwen = Load("qwen2");
        Assert.True(qwen.TryGetId("<|im_end|>", out var imEnd));
        Assert.Equal([imEnd, imEnd], qwen.Encode("<|im_end|><|im_end|>", addBos: false));
    }

    [Fact]
    public void Sequence_start_is_what_the_post_processor_adds()
    {
        Assert.Equal([Load("llama3").BosId], Load("llama3").SequenceStart);     // TemplateProcessing <|begin_of_text|> $A
        Assert.Empty(Load("qwen2").SequenceStart);                             // ByteLevel processor: Qwen adds no BOS
        Assert.Equal([1], Load("sp-legacy").SequenceStart);
    }

    [Fact]
    public void Added_tokens_that_are_not_special_survive_decoding()
    {
        var qwen = Load("qwen2");
        Assert.Equal("<think>\nx</think>", qwen.Decode(qwen.Encode("<think>\nx</think>", addBos: false)));
        Assert.Equal("x", qwen.Decode(qwen.Encode("<|im_start|>x<|im_end|>", addBos: false)));
    }

    [Fact]
    public void Rstrip_tokens_swallow_the_whitespace_after_them()
    {
        // Phi-3's <|end|> has rstrip=true: "<|end|>\n<|user|>" is two ids, the newline belongs to <|end|>.
        var tok = Load("sp-legacy");
        Assert.True(tok.TryGetId("<|end|>", out var end));
        Assert.True(tok.TryGetId("<|user|>", out var user));
        Assert.Equal([end, user], tok.Encode("<|end|>\n \t<|user|>", addBos: false));
    }

    [Fact]
    public void Ignore_merges_takes_a_whole_word_from_the_vocabulary()
    {
        // "Ġxyzzy" is in the vocabulary but no merge builds it: Llama 3 (ignore_merges) takes it whole,
        // Qwen2 (no ignore_merges) spells it from bytes.
        var llama3 = Load("llama3");
        Assert.True(llama3.TryGetId("Ġxyzzy", out var xyzzy));
        Assert.Equal([xyzzy], llama3.Encode(" xyzzy", addBos: false));
        Assert.Equal(" xyzzy".Select(c => (int)c), Load("qwen2").Encode(" xyzzy", addBos: false));
    }

    [Fact]
    public void Letters_outside_the_basic_plane_count_as_letters_in_the_split_regex()
    {
        // U+20000 is \p{L} (UTF-8 F0 A0 80 80). With Llama 3's regex " \U00020000x" is one word, so
        // the fixture's merge of byte 0x80 with "x" applies; .NET's UTF-16 view alone would see two
        // surrogates that are not letters, end the word before "x", and never merge.
        var tok = Load("llama3");
        Assert.True(tok.TryGetId(ByteSymbol0x80 + "x", out var merged));
        Assert.Equal(['a', ' ', 0xF0, 0xA0, 0x80, merged], tok.Encode("a \U00020000x", addBos: false));
        Assert.Equal("a \U00020000x", tok.Decode(tok.Encode("a \U00020000x", addBos: false)));
    }

    /// <summary>GPT-2's symbol for byte 0x80 (the 35th unprintable byte: 256 + 34).</summary>
    const string ByteSymbol0x80 = "\u0122";

    [Fact]
    public void Byte_fallback_spells_unknown_characters_as_byte_tokens()
    {
        var tok = Load("sp-legacy");
        var ids = tok.Encode("日", addBos: false);
        Assert.True(tok.TryGetId("▁", out var space));
        int[] bytes = [.. new[] { "<0xE6>", "<0x97>", "<0xA5>" }.Select(b => tok.TryGetId(b, out var id) ? id : -1)];
        Assert.Equal([space, .. bytes], ids);  // ▁ then 日 = E6 97 A5, not in the vocabulary
        Assert.Equal("日", tok.Decode(ids));
    }

    [Fact]
    public void A_llama_class_with_add_bos_token_false_adds_no_bos()
    {
        // Phi-3's tokenizer_config.json: LlamaTokenizer, add_bos_token false; transformers rebuilds the
        // post-processor from those flags, whatever tokenizer.json says.
        var path = Path.Combine(FixtureDir("sp-legacy"), "tokenizer.json");
        var phi3 = TokenizerJsonTextTokenizer.FromFile(path,
            new TokenizerConfig(BosToken: "<s>", EosToken: "<|endoftext|>", TokenizerClass: "LlamaTokenizer", AddBosToken: false));
        Assert.Empty(phi3.SequenceStart);
        Assert.True(phi3.TryGetId("<|endoftext|>", out var eos));
        Assert.Equal((1, eos), (phi3.BosId, phi3.EosId));
        var gemma = TokenizerJsonTextTokenizer.FromFile(path, new TokenizerConfig(BosToken: "<s>", TokenizerClass: "GemmaTokenizerFast"));
        Assert.Equal([1], gemma.SequenceStart);
    }

    [Fact]
    public void A_folder_with_only_tokenizer_json_loads_with_its_config_files()
    {
        File.Copy(Path.Combine(FixtureDir("qwen2"), "tokenizer.json"), PathIn("tokenizer.json"));
        var tok = Assert.IsType<TokenizerJsonTextTokenizer>(TokenizerLoader.FromDirectory(Temp.FullName));
        Assert.True(tok.TryGetId("<|endoftext|>", out var endOfText));
        Assert.Equal((endOfText, endOfText, endOfText), (tok.BosId, tok.EosId, tok.PadId)); // by its name, none configured

        File.WriteAllText(PathIn("tokenizer_config.json"), """{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": null}""");
        tok = Assert.IsType<TokenizerJsonTextTokenizer>(TokenizerLoader.FromDirectory(Temp.FullName));
        Assert.True(tok.TryGetId("<|im_end|>", out var imEnd));
        Assert.Equal((imEnd, endOfText), (tok.EosId, tok.PadId));

        File.WriteAllText(PathIn("config.json"), $$"""{"model_type": "qwen2", "eos_token_id": {{endOfText}}, "bos_token_id": 7}""");
        tok = Assert.IsType<TokenizerJsonTextTokenizer>(TokenizerLoader.FromDirectory(Temp.FullName));
        Assert.Equal((7, endOfText), (tok.BosId, tok.EosId));                              // config.json wins
    }

    [Fact]
    public void Tokenizer_json_wins_over_the_slow_files_as_in_autotokenizer()
    {
        File.Copy(Path.Combine(FixtureDir("qwen2"), "tokenizer.json"), PathIn("tokenizer.json"));
        File.WriteAllText(PathIn("vocab.json"), "not read");
        File.WriteAllText(PathIn("merges.txt"), "not read");
        Assert.IsType<TokenizerJsonTextTokenizer>(TokenizerLoader.FromDirectory(Temp.FullName));
    }

    [Theory]
    [InlineData("pre_tokenizer", """{"type": "Whitespace"}""", "pre_tokenizer.type = 'Whitespace' is not supported")]
    [InlineData("pre_tokenizer", """{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Sideways"}]}""",
        "pre_tokenizer.pretokenizers[0].behavior = 'Sideways'")]
    [InlineData("normalizer", """{"type": "BertNormalizer"}""", "normalizer.type = 'BertNormalizer'")]
    [InlineData("decoder", """{"type": "WordPiece"}""", "decoder.type = 'WordPiece'")]
    [InlineData("post_processor", """{"type": "RobertaProcessing"}""", "post_processor.type = 'RobertaProcessing'")]
    [InlineData("pre_tokenizer", """{"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}""", "pre_tokenizer.pattern.Regex = '(unclosed'")]
    public void An_unsupported_component_is_refused_by_name(string field, string json, string expected)
    {
        var root = JsonNodeOf(Path.Combine(FixtureDir("llama3"), "tokenizer.json"));
        root[field] = System.Text.Json.Nodes.JsonNode.Parse(json);
        File.WriteAllText(PathIn("tokenizer.json"), root.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.FromDirectory(Temp.FullName));
        Assert.Contains(PathIn("tokenizer.json"), e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Merges_of_tokens_holding_a_space_work_in_the_pair_form()
    {
        // No pre-tokenizer, so the space stays inside the word; "a b" is reached through "a " + "b".
        File.WriteAllText(PathIn("tokenizer.json"), """
            {"added_tokens": [{"id": 5, "content": "</s>", "special": true}],
             "model": {"type": "BPE", "vocab": {"a": 0, " ": 1, "b": 2, "a ": 3, "a b": 4},
                       "merges": [["a", " "], ["a ", "b"]]}}
            """);
        var tok = TokenizerJsonTextTokenizer.FromFile(PathIn("tokenizer.json"));
        Assert.Equal([4, 1, 0], tok.Encode("a b a", addBos: false));
        Assert.Equal("a b   a", tok.Decode([4, 1, 0])); // no decoder: tokens joined by spaces, as in Hugging Face
    }

    [Fact]
    public void Bpe_dropout_is_refused()
    {
        var root = JsonNodeOf(Path.Combine(FixtureDir("llama3"), "tokenizer.json"));
        root["model"]!["dropout"] = 0.1;
        File.WriteAllText(PathIn("tokenizer.json"), root.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.FromDirectory(Temp.FullName));
        Assert.Contains("model.dropout = 0.1", e.Message);
    }

    static System.Text.Json.Nodes.JsonObject JsonNodeOf(string path) =>
        System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    [Fact]
    public void Nfc_and_nfd_match_pythons_unicodedata()
    {
        // .NET's string.Normalize is a no-op in invariant globalization mode; ChainLora has its own.
        var fixture = Fixtures.Json(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", "unicode-normalization.json"));
        foreach (var c in fixture.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            Assert.Equal(c.GetProperty("nfc").GetString(), UnicodeNormalization.Nfc(text));
            Assert.Equal(c.GetProperty("nfd").GetString(), UnicodeNormalization.Nfd(text));
        }
    }

    // --- stories260K's SentencePiece model converted the way transformers converts Llama's
    // (LlamaConverter: Prepend + Replace normalizer, byte_fallback, merges ordered by the merged
    // piece's score) must encode the TinyStories sample exactly as the llama2.c-pinned
    // SentencePieceTextTokenizer does.

    [Fact]
    public void Converted_stories260K_encodes_like_its_sentencepiece_model()
    {
        var bin = SharedData.Require("models/stories260K/tok512.bin");
        // tok512.model asks SentencePiece to remove extra whitespace, which transformers' LlamaConverter
        // (like llama2.c) does not do: lines with leading, trailing or doubled spaces differ by design.
        var corpus = File.ReadAllLines(SharedData.Require("corpus/tinystories-sample.txt"))
            .Where(l => l.Length > 0 && l.Trim() == l && !l.Contains("  ", StringComparison.Ordinal)).Take(400).ToList();
        WriteConvertedLlama2c(bin, PathIn("tokenizer.json"));
        var json = TokenizerJsonTextTokenizer.FromFile(PathIn("tokenizer.json"));
        var sp = SentencePieceTextTokenizer.FromFile(SharedData.Require("models/stories260K/tok512.model"));
        foreach (var line in corpus.Append("café 日本 ☃"))
        {
            Assert.Equal(sp.Encode(line, addBos: true), json.Encode(line, addBos: true));
            Assert.Equal(sp.EncodeContinuation(" " + line), json.EncodeContinuation(" " + line));
            Assert.Equal(sp.Decode(sp.Encode(line, addBos: true)), json.Decode(json.Encode(line, addBos: true)));
        }
    }

    /// <summary>llama2.c's tokenizer.bin (max_token_length, then per piece: float score, int length, bytes) as a tokenizer.json.</summary>
    static void WriteConvertedLlama2c(string binPath, string jsonPath)
    {
        using var reader = new BinaryReader(File.OpenRead(binPath));
        reader.ReadInt32();
        var pieces = new List<(string Piece, float Score)>();
        while (reader.BaseStream.Position < reader.BaseStream.Length)
        {
            var score = reader.ReadSingle();
            var piece = Encoding.UTF8.GetString(reader.ReadBytes(reader.ReadInt32()));
            pieces.Add((piece.Replace(' ', '▁'), score));
        }
        pieces[0] = ("<unk>", pieces[0].Score);
        pieces[1] = ("<s>", pieces[1].Score);
        pieces[2] = ("</s>", pieces[2].Score);
        var vocab = pieces.Select((p, id) => (p.Piece, id)).ToDictionary(p => p.Piece, p => p.id);
        // transformers' SentencePieceExtractor: every split of a piece into two pieces, by the piece's score.
        var merges = pieces.Select((p, id) => (p.Piece, p.Score, id))
            .SelectMany(p => Enumerable.Range(1, Math.Max(0, p.Piece.Length - 1))
                .Select(i => (Left: p.Piece[..i], Right: p.Piece[i..], p.Score))
                .Where(m => vocab.ContainsKey(m.Left) && vocab.ContainsKey(m.Right))
                .OrderBy(m => vocab[m.Left]).ThenBy(m => vocab[m.Right]))
            .OrderByDescending(m => m.Score)
            .Select(m => new[] { m.Left, m.Right }).ToList();
        var spec = new
        {
            added_tokens = new[] { "<unk>", "<s>", "</s>" }.Select((c, id) => new { id, content = c, special = true, normalized = false }),
            normalizer = new
            {
                type = "Sequence",
                normalizers = new object[]
                {
                    new { type = "Prepend", prepend = "▁" },
                    new { type = "Replace", pattern = new { String = " " }, content = "▁" },
                },
            },
            post_processor = new
            {
                type = "TemplateProcessing",
                single = new object[] { new { SpecialToken = new { id = "<s>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } },
                special_tokens = new Dictionary<string, object> { ["<s>"] = new { id = "<s>", ids = new[] { 1 }, tokens = new[] { "<s>" } } },
            },
            decoder = new
            {
                type = "Sequence",
                decoders = new object[]
                {
                    new { type = "Replace", pattern = new { String = "▁" }, content = " " },
                    new { type = "ByteFallback" }, new { type = "Fuse" }, new { type = "Strip", content = " ", start = 1, stop = 0 },
                },
            },
            model = new { type = "BPE", unk_token = "<unk>", fuse_unk = true, byte_fallback = true, vocab, merges },
        };
        File.WriteAllText(jsonPath, JsonSerializer.Serialize(spec));
    }
}
