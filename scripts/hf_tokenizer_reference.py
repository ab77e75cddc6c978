#!/usr/bin/env python3
"""An independent transcription of Hugging Face `tokenizers` encode/decode for BPE tokenizer.json files.

Written from the Rust sources' semantics (tokenizer/mod.rs encode_single_sequence,
tokenizer/added_vocabulary.rs, normalizers/, pre_tokenizers/, models/bpe/model.rs + word.rs,
processors/template.rs, decoders/), in plain Python with the `regex` module (Python's `re`
lacks \\p{L}; Debian: python3-regex). It shares no code with ChainLora's C# tokenizer; it is
what the expected ids in tests/ChainLora.Tests/Fixtures/tokenizers/ come from (see
make_tokenizer_fixtures.py). Only the components ChainLora supports are implemented.

BPE here is the textbook loop (openai/gpt-2 encoder.py): merge the lowest-ranked adjacent pair,
all its occurrences left to right, until none is in the merge table; HF's priority-queue
Word::merge_all gives the same result.
"""

import json
import unicodedata

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    """openai/gpt-2 encoder.py."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


# ---------------------------------------------------------------- patterns

def find_matches(pattern, text):
    """[(start, end, is_match)] covering text (tokenizer/pattern.rs)."""
    if text == "":
        return [(0, 0, False)]
    if "String" in pattern:
        rx = regex.compile(regex.escape(pattern["String"]))
    else:
        rx = regex.compile(pattern["Regex"])
    out, prev = [], 0
    for m in rx.finditer(text):
        if prev != m.start():
            out.append((prev, m.start(), False))
        out.append((m.start(), m.end(), True))
        prev = m.end()
    if prev != len(text):
        out.append((prev, len(text), False))
    return out


def split_by(matches, behavior):
    """NormalizedString::split: list of (start, end) kept."""
    if behavior == "Isolated":
        return [(s, e) for s, e, _ in matches]
    if behavior == "Removed":
        return [(s, e) for s, e, m in matches if not m]
    out, prev_match = [], False
    if behavior == "Contiguous":
        for s, e, m in matches:
            if m == prev_match and out:
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
            prev_match = m
        return out
    if behavior == "MergedWithPrevious":
        for s, e, m in matches:
            if m and not prev_match and out:
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
            prev_match = m
        return out
    if behavior == "MergedWithNext":
        for s, e, m in reversed(matches):
            if m and not prev_match and out:
                out[-1] = (s, out[-1][1])
            else:
                out.append((s, e))
            prev_match = m
        return list(reversed(out))
    raise ValueError(behavior)


# ---------------------------------------------------------------- normalizers

def normalize(spec, text):
    if spec is None:
        return text
    t = spec["type"]
    if t == "Sequence":
        for n in spec["normalizers"]:
            text = normalize(n, text)
        return text
    if t in ("NFC", "NFD", "NFKC", "NFKD"):
        return unicodedata.normalize(t, text)
    if t == "Lowercase":
        return text.lower()
    if t == "Prepend":
        return spec["prepend"] + text if text else text
    if t == "Replace":
        return "".join(spec["content"] if m else text[s:e] for s, e, m in find_matches(spec["pattern"], text))
    raise ValueError("normalizer " + t)


# ---------------------------------------------------------------- pre-tokenizers
# A piece is (text, at_start): at_start when it begins at offset 0 of the original input.

def pre_tokenize(spec, pieces):
    if spec is None:
        return pieces
    t = spec["type"]
    if t == "Sequence":
        for p in spec["pretokenizers"]:
            pieces = pre_tokenize(p, pieces)
        return pieces
    out = []
    for text, at_start in pieces:
        if t == "Split":
            matches = find_matches(spec["pattern"], text)
            if spec.get("invert", False):
                matches = [(s, e, not m) for s, e, m in matches]
            spans = split_by(matches, spec["behavior"])
        elif t == "ByteLevel":
            if spec.get("add_prefix_space", True) and not text.startswith(" "):
                text, at_start = " " + text, at_start
            spans = split_by(find_matches({"Regex": GPT2_PATTERN}, text), "Isolated") if spec.get("use_regex", True) else [(0, len(text))]
            spans = [(s, e) for s, e in spans if e > s]
            out.extend(("".join(BYTE_ENCODER[b] for b in text[s:e].encode("utf-8")), at_start and s == 0) for s, e in spans)
            continue
        elif t == "Metaspace":
            rep = spec["replacement"]
            scheme = spec.get("prepend_scheme") or ("always" if spec.get("add_prefix_space", True) else "never")
            text = text.replace(" ", rep)
            if text and not text.startswith(rep) and (scheme == "always" or (scheme == "first" and at_start)):
                text = rep + text
            spans = split_by(find_matches({"String": rep}, text), "MergedWithNext") if spec.get("split", True) else [(0, len(text))]
        elif t == "Digits":
            matches = [(m.start(), m.end(), True) for m in regex.finditer(r"\p{N}", text)]
            full, prev = [], 0
            for s, e, _ in matches:
                if prev != s:
                    full.append((prev, s, False))
                full.append((s, e, True))
                prev = e
            if prev != len(text):
                full.append((prev, len(text), False))
            spans = split_by(full, "Isolated" if spec.get("individual_digits") else "Contiguous")
        else:
            raise ValueError("pre_tokenizer " + t)
        out.extend((text[s:e], at_start and s == 0) for s, e in spans if e > s)
    return out


# ---------------------------------------------------------------- BPE

def bpe_word(model, word):
    vocab = model["vocab"]
    if model.get("ignore_merges") and word in vocab:
        return [vocab[word]]
    ranks = {}
    for i, m in enumerate(model["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        ranks[(a, b)] = i
    # symbols: (string or None, id) -- None for byte-fallback/unk symbols, which never merge
    symbols = []
    unk = model.get("unk_token")
    for ch in word:
        if ch in vocab:
            symbols.append(ch)
            continue
        codes = ["<0x%02X>" % b for b in ch.encode("utf-8")]
        if model.get("byte_fallback") and all(c in vocab for c in codes):
            symbols.extend(("\0byte", vocab[c]) for c in codes)
            continue
        if unk is not None:
            if model.get("fuse_unk") and symbols and symbols[-1] == ("\0unk", vocab[unk]):
                continue
            symbols.append(("\0unk", vocab[unk]))
    while True:
        best = None
        for i in range(len(symbols) - 1):
            a, b = symbols[i], symbols[i + 1]
            if isinstance(a, str) and isinstance(b, str) and (a, b) in ranks:
                if best is None or ranks[(a, b)] < ranks[best]:
                    best = (a, b)
        if best is None:
            break
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                merged.append(best[0] + best[1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return [vocab[s] if isinstance(s, str) else s[1] for s in symbols]


# ---------------------------------------------------------------- added tokens

def split_added(tokens, text):
    """[(text, added_id or None, start)] (added_vocabulary.rs find_matches, leftmost-longest)."""
    out, emitted, i = [], 0, 0
    by_len = sorted(tokens, key=lambda t: -len(t["content"]))
    while i < len(text):
        match = next((t for t in by_len if t["content"] and text.startswith(t["content"], i)), None)
        if match is None:
            i += 1
            continue
        start, stop = i, i + len(match["content"])
        i = stop
        if match.get("single_word") and ((start > 0 and regex.search(r"\w$", text[:start])) or (stop < len(text) and regex.match(r"\w", text[stop:]))):
            continue
        if match.get("lstrip"):
            start = max(emitted, len(text[:start].rstrip()))
        if match.get("rstrip"):
            stop += len(text[stop:]) - len(text[stop:].lstrip())
        if emitted < start:
            out.append((text[emitted:start], None, emitted))
        out.append((text[start:stop], match["id"], start))
        emitted = i = stop
    if emitted < len(text):
        out.append((text[emitted:], None, emitted))
    return out


# ---------------------------------------------------------------- the tokenizer

class Tokenizer:
    def __init__(self, spec, add_bos_override=None):
        self.spec = spec
        self.added = spec.get("added_tokens") or []
        for t in self.added:
            t.setdefault("normalized", not t.get("special", False))
        self.prefix, self.suffix = self._template(spec.get("post_processor"))
        self.id_to_token = {i: t for t, i in spec["model"]["vocab"].items()}
        self.id_to_token.update({t["id"]: t["content"] for t in self.added})
        self.special = {t["id"] for t in self.added if t.get("special")}

    def _template(self, spec):
        if spec is None or spec["type"] == "ByteLevel":
            return [], []
        if spec["type"] == "Sequence":
            prefix, suffix = [], []
            for p in spec["processors"]:
                pp, ps = self._template(p)
                prefix, suffix = pp + prefix, suffix + ps
            return prefix, suffix
        assert spec["type"] == "TemplateProcessing", spec["type"]
        prefix, suffix, seen = [], [], False
        for item in spec["single"]:
            if "Sequence" in item:
                seen = True
                continue
            ids = spec["special_tokens"][item["SpecialToken"]["id"]]["ids"]
            (suffix if seen else prefix).extend(ids)
        return prefix, suffix

    def encode(self, text, add_special_tokens=True, continuation=False):
        spec = self.spec
        raw = [t for t in self.added if not t["normalized"]]
        normalized = [t for t in self.added if t["normalized"]]
        ids = []
        for piece, added_id, start in split_added(raw, text):
            if added_id is not None:
                ids.append(added_id)
                continue
            no_prefix = continuation and start == 0
            norm_spec = spec.get("normalizer")
            if no_prefix:
                norm_spec = strip_prepend(norm_spec)
            n = normalize(norm_spec, piece)
            if not n:
                continue
            patterns = [dict(t, content=normalize(spec.get("normalizer"), t["content"])) for t in normalized]
            for part, part_id, part_start in split_added(patterns, n):
                if part_id is not None:
                    ids.append(part_id)
                    continue
                pre = spec.get("pre_tokenizer")
                if no_prefix:
                    pre = no_prefix_pre(pre)
                for word, _ in pre_tokenize(pre, [(part, start == 0 and part_start == 0)]):
                    ids.extend(bpe_word(spec["model"], word))
        return (self.prefix + ids) if add_special_tokens else ids

    def decode(self, ids):
        tokens = [self.id_to_token[i] for i in ids if i in self.id_to_token and i not in self.special]
        dec = self.spec.get("decoder")
        return "".join(decode_chain(dec, tokens)) if dec is not None else " ".join(tokens)


def strip_prepend(spec):
    if spec is None:
        return None
    if spec["type"] == "Prepend":
        return None
    if spec["type"] == "Sequence":
        return dict(spec, normalizers=[n for n in (strip_prepend(x) for x in spec["normalizers"]) if n is not None])
    return spec


def no_prefix_pre(spec):
    if spec is None:
        return None
    if spec["type"] == "Sequence":
        return dict(spec, pretokenizers=[no_prefix_pre(p) for p in spec["pretokenizers"]])
    if spec["type"] == "Metaspace":
        return dict(spec, prepend_scheme="never")
    if spec["type"] == "ByteLevel":
        return dict(spec, add_prefix_space=False)
    return spec


def decode_chain(spec, tokens):
    t = spec["type"]
    if t == "Sequence":
        for d in spec["decoders"]:
            tokens = decode_chain(d, tokens)
        return tokens
    if t == "ByteLevel":
        data = bytearray()
        for tok in tokens:
            if all(c in BYTE_DECODER for c in tok):
                data.extend(BYTE_DECODER[c] for c in tok)
            else:
                data.extend(tok.encode("utf-8"))
        return [data.decode("utf-8", errors="replace")]
    if t == "Metaspace":
        rep = spec["replacement"]
        scheme = spec.get("prepend_scheme") or ("always" if spec.get("add_prefix_space", True) else "never")
        return ["".join(("" if i == 0 and scheme != "never" else " ") if c == rep else c for c in tok) for i, tok in enumerate(tokens)]
    if t == "Replace":
        return ["".join(spec["content"] if m else tok[s:e] for s, e, m in find_matches(spec["pattern"], tok)) for tok in tokens]
    if t == "ByteFallback":
        out, pending = [], []

        def flush():
            if pending:
                try:
                    out.append(bytes(pending).decode("utf-8"))
                except UnicodeDecodeError:
                    out.extend("\ufffd" for _ in pending)
                pending.clear()
        for tok in tokens:
            if len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
                pending.append(int(tok[3:5], 16))
                continue
            flush()
            out.append(tok)
        flush()
        return out
    if t == "Fuse":
        return ["".join(tokens)]
    if t == "Strip":
        c, start, stop = spec["content"], spec["start"], spec["stop"]
        out = []
        for tok in tokens:
            a, b = 0, len(tok)
            while a < start and a < len(tok) and tok[a] == c:
                a += 1
            while len(tok) - b < stop and b > a and tok[b - 1] == c:
                b -= 1
            out.append(tok[a:b])
        return out
    raise ValueError("decoder " + t)


def load(path):
    with open(path, encoding="utf-8") as f:
        return Tokenizer(json.load(f))
