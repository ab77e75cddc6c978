#!/usr/bin/env python3
"""Write small tokenizer.json fixtures in the layouts today's model families ship, and their expected encodings.

Each fixture's vocabulary and merges come from a tiny BPE trained here on CORPUS; its
components (normalizer, pre-tokenizer, added tokens, post-processor, decoder) copy the layout
of a real family's tokenizer.json:

  llama3     byte-level; Split with Llama 3's regex + ByteLevel(use_regex=false); ignore_merges;
             TemplateProcessing adds <|begin_of_text|>                    (Llama 3.x)
  qwen2      byte-level; NFC; Split with Qwen2's regex; post-processor ByteLevel (no BOS);
             <think> is an added token that is not special                (Qwen2, 2.5, 3)
  sp-legacy  SentencePiece-converted BPE: Prepend("▁") + Replace(" ", "▁"), byte_fallback,
             fuse_unk, decoder Replace/ByteFallback/Fuse/Strip, <s> added; Phi-3's added
             tokens with rstrip                                            (Llama 2, Mistral v0.1, Phi-3)
  metaspace  the same model with Metaspace(prepend_scheme="first", split=false)
             and [INST] control tokens                                    (Mistral v0.3)
  gemma      Replace(" ", "▁") only (no dummy prefix), <bos> added       (Gemma)

Expected ids come from scripts/hf_tokenizer_reference.py, an independent Python transcription of
huggingface/tokenizers. Run from the repository root (needs python3-regex):

    python3 scripts/make_tokenizer_fixtures.py

Output: tests/ChainLora.Tests/Fixtures/tokenizers/<name>/tokenizer.json and expected.json.
"""

import collections
import json
import os
import sys

import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_tokenizer_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "ChainLora.Tests", "Fixtures", "tokenizers")

LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

CORPUS = """Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
One day, she saw a big, red ball. "Can I play with the ball?" she asked her mother.
Her mother said, "Yes, but don't go too far." Lily played with the ball all day long.
The user asks the assistant a question, and the assistant answers the user.
You are a helpful assistant. Answer the question in one sentence.
It's 2024 and there are 365 days in the year; 12 months, 52 weeks.
Le café est très bon. Über alles, naïve façade.
今天天气很好。我们去公园玩。
def hello(name):
    return f"Hello, {name}!"
"""

TEXTS = [
    "Hello world",
    " Hello",
    "Hello  world\n\nHow are you?",
    "I'M here, you're THERE and they'LL see",
    "12345 and 3.14159",
    "tabs\tand\r\nCRLF  ",
    "café naïve e\u0301 façade",
    "emoji 😀 ok",
    "\U00020000\U00020001 ext-B and \U0001d400\U0001d401 math",
    "今天天气很好",
    "日本語",
    "  leading spaces",
    "trailing   ",
    "",
    "x",
    "\n\n\n",
    "don't stop the assistant",
    "def hello(name):\n    return f\"Hello, {name}!\"",
]


def train_merges(words, n):
    """words: Counter of tuples of symbols. Most frequent pair first; ties by the pair itself."""
    words = dict(words)
    merges = []
    for _ in range(n):
        pairs = collections.Counter()
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + f
        words = merged
    return merges


def byte_level_model(pattern, n_merges, extra):
    words = collections.Counter()
    for m in regex.finditer(pattern, CORPUS):
        words[tuple(ref.BYTE_ENCODER[b] for b in m.group().encode("utf-8"))] += 1
    merges = train_merges(words, n_merges)
    vocab = {ref.BYTE_ENCODER[b]: b for b in range(256)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for token in extra:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def sentencepiece_model(n_merges):
    """Pieces over characters with "▁" for spaces (SentencePiece BPE), <unk>/<s>/</s> and 256 byte pieces first."""
    words = collections.Counter()
    for line in CORPUS.split("\n"):
        for w in line.split(" "):
            if w:
                words[tuple("▁" + w)] += 1
    merges = train_merges(words, n_merges)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for ch in sorted({c for w in words for c in w} - {"日", "語"}):
        vocab[ch] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


def added(tokens, start):
    return [dict(id=start + i, content=c, single_word=False, lstrip=False, rstrip=r, normalized=False, special=s)
            for i, (c, s, r) in enumerate(tokens)]


def template(token, token_id):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": token, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {token: {"id": token, "ids": [token_id], "tokens": [token]}}}


SP_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}


def llama3():
    vocab, merges = byte_level_model(LLAMA3_PATTERN, 300, ["Ġxyzzy"])  # reachable only through ignore_merges
    # U+20000 is a letter outside the BMP (UTF-8 F0 A0 80 80): its last byte merges with a following
    # "x" only if the Split regex keeps " \U00020000x" one word, as Oniguruma's \p{L} does.
    last_byte_x = (ref.BYTE_ENCODER[0x80], "x")
    merges.append(last_byte_x)
    vocab.setdefault(last_byte_x[0] + last_byte_x[1], len(vocab))
    specials = added([("<|begin_of_text|>", True, False), ("<|end_of_text|>", True, False),
                      ("<|start_header_id|>", True, False), ("<|end_header_id|>", True, False),
                      ("<|eot_id|>", True, False)], len(vocab))
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": specials, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            template("<|begin_of_text|>", specials[0]["id"])]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }, ["a<|eot_id|>b", "<|start_header_id|>user<|end_header_id|>\n\nHi xyzzy<|eot_id|>", " xyzzy and xyzzyx", "a \U00020000x"]


def qwen2():
    vocab, merges = byte_level_model(QWEN2_PATTERN, 300, ["Ġxyzzy"])
    specials = added([("<|endoftext|>", True, False), ("<|im_start|>", True, False), ("<|im_end|>", True, False),
                      ("<think>", False, False), ("</think>", False, False)], len(vocab))
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": specials,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }, ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nOK<|im_end|>", " xyzzy"]


def sp_model(extra_tokens):
    vocab, merges = sentencepiece_model(300)
    tokens = [dict(id=0, content="<unk>", single_word=False, lstrip=False, rstrip=False, normalized=False, special=True),
              dict(id=1, content="<s>", single_word=False, lstrip=False, rstrip=False, normalized=False, special=True),
              dict(id=2, content="</s>", single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)]
    tokens += added(extra_tokens, len(vocab))
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
             "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}
    return model, tokens


def sp_legacy():
    # Phi-3's chat tokens strip the whitespace after them (rstrip=true in its tokenizer.json).
    model, tokens = sp_model([("<|endoftext|>", True, False), ("<|assistant|>", True, True),
                              ("<|end|>", True, True), ("<|user|>", True, True)])
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": tokens,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None, "post_processor": template("<s>", 1), "decoder": SP_DECODER, "model": model,
    }, ["<s>Hi</s> there", "<|user|>\nHow are you?<|end|>\n<|assistant|>\nFine.<|end|>\n", "a </s> b"]


def metaspace():
    model, tokens = sp_model([("[INST]", True, False), ("[/INST]", True, False)])
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": tokens, "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "post_processor": template("<s>", 1),
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        "model": model,
    }, ["<s>[INST] Hello there [/INST] Hi.</s>", "[INST]What? [/INST]", "Hi [INST] you"]


def gemma():
    vocab, merges = sentencepiece_model(300)
    names = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {({"<unk>": "<pad>", "<s>": "<eos>", "</s>": "<bos>"}.get(k, k)): v for k, v in vocab.items()}
    vocab["<unk>"] = len(vocab)
    tokens = [dict(id=vocab[n], content=n, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True) for n in names]
    tokens += added([("<start_of_turn>", True, False), ("<end_of_turn>", True, False)], len(vocab))
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": tokens,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": None, "post_processor": template("<bos>", vocab["<bos>"]),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }, ["<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n"]


def main():
    for name, make in [("llama3", llama3), ("qwen2", qwen2), ("sp-legacy", sp_legacy), ("metaspace", metaspace), ("gemma", gemma)]:
        spec, extra_texts = make()
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False, indent=1)
        tok = ref.Tokenizer(json.loads(json.dumps(spec)))
        cases = []
        for text in TEXTS + extra_texts:
            ids = tok.encode(text, add_special_tokens=False)
            cases.append({"text": text, "ids": ids, "with_special_tokens": tok.encode(text),
                          "continuation": tok.encode(text, add_special_tokens=False, continuation=True),
                          "decoded": tok.decode(tok.encode(text))})
        with open(os.path.join(folder, "expected.json"), "w", encoding="utf-8") as f:
            json.dump({"generator": "scripts/make_tokenizer_fixtures.py (scripts/hf_tokenizer_reference.py)", "cases": cases},
                      f, ensure_ascii=False, indent=1)
        print(f"{name}: vocab {len(spec['model']['vocab'])}, merges {len(spec['model']['merges'])}, {len(cases)} cases")


if __name__ == "__main__":
    main()
