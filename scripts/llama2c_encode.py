#!/usr/bin/env python3
"""Independent reference for SentencePieceTextTokenizer: llama2.c's encode/decode in Python.

Reads llama2.c's tokenizer binary (tok512.bin: int32 max_token_length, then per token
float32 score, int32 length, bytes; "▁" already replaced by " ") and runs the algorithm of
karpathy/llama2.c run.c `encode` (dummy-prefix " ", code points looked up whole or split into
byte-fallback ids byte + 3, then repeatedly merge the adjacent pair whose concatenation is in
the vocabulary with the highest score) and `decode` (drop the leading space right after BOS,
"<0xNN>" pieces are raw bytes). It does not use the sentencepiece package or tok512.model.

It also produces the greedy continuation of the stories260K prompt with a numpy transcription
of run.c `forward` (RMSNorm eps 1e-5, interleaved RoPE, grouped-query attention, SwiGLU, tied
classifier), so the decode test pins real model output ids rather than re-encoded text.

Run from the repository root (needs numpy):

    /usr/bin/python3 scripts/llama2c_encode.py [../shared/models/stories260K]

Prints the ids that tests/ChainLora.Tests/Tokenization/TokenizerTests.cs pins.
"""

import os
import re
import struct
import sys

import numpy as np

BOS, EOS = 1, 2


def read_tokenizer(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_token_length,) = struct.unpack_from("<i", data, 0)
    offset, vocab, scores = 4, [], []
    while offset < len(data):
        score, length = struct.unpack_from("<fi", data, offset)
        offset += 8
        vocab.append(data[offset:offset + length])
        scores.append(score)
        offset += length
    assert max(len(v) for v in vocab) <= max_token_length
    return vocab, scores


def utf8_code_points(text):
    """run.c walks UTF-8 bytes and groups continuation bytes (max 4) with their lead byte."""
    return [ch.encode("utf-8") for ch in text]


def encode(text, vocab, scores, bos, eos, dummy_prefix=True):
    """run.c encode; dummy_prefix=False (not in run.c) gives the ids of a continuation."""
    lookup = {piece: i for i, piece in enumerate(vocab)}
    tokens = [BOS] if bos else []
    if text and dummy_prefix:
        tokens.append(lookup[b" "])  # add_dummy_prefix
    for cp in utf8_code_points(text):
        if cp in lookup:
            tokens.append(lookup[cp])
        else:
            tokens.extend(b + 3 for b in cp)  # byte fallback: <0x00>..<0xFF> are ids 3..258
    start = 1 if bos else 0
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(start, len(tokens) - 1):
            merged = lookup.get(vocab[tokens[i]] + vocab[tokens[i + 1]], -1)
            if merged != -1 and scores[merged] > best_score:
                best_score, best_id, best_idx = scores[merged], merged, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    if eos:
        tokens.append(EOS)
    return tokens


def decode(ids, vocab):
    out, prev = bytearray(), None
    for tok in ids:
        if tok in (BOS, EOS):
            prev = tok
            continue
        piece = vocab[tok]
        if prev == BOS and piece.startswith(b" "):
            piece = piece[1:]
        m = re.fullmatch(rb"<0x([0-9A-F]{2})>", piece)
        out += bytes([int(m.group(1), 16)]) if m else piece
        prev = tok
    return out.decode("utf-8", errors="replace")


def read_checkpoint(path):
    """llama2.c v0 model.bin: 7 int32 header, then fp32 weights in run.c's memory_map_weights order."""
    with open(path, "rb") as f:
        data = f.read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab_size, seq_len = struct.unpack_from("<7i", data, 0)
    assert vocab_size > 0, "negative vocab_size means an untied classifier; not needed here"
    w = np.frombuffer(data, dtype="<f4", offset=28)
    kv_dim = dim * n_kv_heads // n_heads
    shapes = [
        ("tok", (vocab_size, dim)), ("rms_att", (n_layers, dim)),
        ("wq", (n_layers, dim, dim)), ("wk", (n_layers, kv_dim, dim)),
        ("wv", (n_layers, kv_dim, dim)), ("wo", (n_layers, dim, dim)),
        ("rms_ffn", (n_layers, dim)), ("w1", (n_layers, hidden, dim)),
        ("w2", (n_layers, dim, hidden)), ("w3", (n_layers, hidden, dim)),
        ("rms_final", (dim,)),
    ]
    weights, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        weights[name] = w[offset:offset + n].reshape(shape).astype(np.float64)
        offset += n
    offset += seq_len * (dim // n_heads)  # freq_cis_real + freq_cis_imag, recomputed below
    assert offset == len(w), (offset, len(w))
    return weights, n_layers, n_heads, n_kv_heads


def forward(ids, weights, n_layers, n_heads, n_kv_heads):
    """Logits (V,) of the last position given all ids (T,), recomputing the whole prefix."""
    def rmsnorm(x, g):  # x: (T, D)
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * g

    def rope(x, n):  # x: (T, n*hs), pairs (2i, 2i+1) rotated by pos / 10000^(2i/hs) within a head
        t, width = x.shape
        hs = width // n
        freq = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)  # (hs/2,)
        ang = np.arange(t)[:, None] * freq[None, :]  # (T, hs/2)
        x = x.reshape(t, n, hs // 2, 2)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = np.stack([x[..., 0] * c - x[..., 1] * s, x[..., 0] * s + x[..., 1] * c], axis=-1)
        return out.reshape(t, width)

    x = weights["tok"][ids]  # (T, D)
    t, dim = x.shape
    hs = dim // n_heads
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for l in range(n_layers):
        h = rmsnorm(x, weights["rms_att"][l])
        q = rope(h @ weights["wq"][l].T, n_heads).reshape(t, n_heads, hs)
        k = rope(h @ weights["wk"][l].T, n_kv_heads).reshape(t, n_kv_heads, hs)
        v = (h @ weights["wv"][l].T).reshape(t, n_kv_heads, hs)
        rep = n_heads // n_kv_heads
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)  # (T, nh, hs)
        att = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hs) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        x = x + np.einsum("hqk,khd->qhd", att, v).reshape(t, dim) @ weights["wo"][l].T
        h = rmsnorm(x, weights["rms_ffn"][l])
        a, b = h @ weights["w1"][l].T, h @ weights["w3"][l].T
        x = x + (a / (1 + np.exp(-a)) * b) @ weights["w2"][l].T
    x = rmsnorm(x, weights["rms_final"])
    return x[-1] @ weights["tok"].T


def greedy(prompt_ids, steps, model):
    ids = list(prompt_ids)
    for _ in range(steps):
        ids.append(int(np.argmax(forward(np.array(ids), *model))))
    return ids[len(prompt_ids):]


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/models/stories260K"
    vocab, scores = read_tokenizer(os.path.join(folder, "tok512.bin"))
    print(f"vocab {len(vocab)}")
    prompt_text = "Once upon a time, there was a little girl"
    cases = [  # (text, bos, dummy_prefix)
        (prompt_text, True, True),
        ("great", False, True),
        ("café 日本", False, True),
        (" named Lily. She loved to play outside in the park. One day, she saw a big, red ball.", False, False),
        (" great", False, False),
        ("great", False, False),
    ]
    for text, bos, dummy_prefix in cases:
        ids = encode(text, vocab, scores, bos=bos, eos=False, dummy_prefix=dummy_prefix)
        print(f"encode({text!r}, bos={int(bos)}, dummy_prefix={int(dummy_prefix)}) = {ids}")
        print(f"  pieces = {[vocab[i].decode('utf-8', errors='replace') for i in ids]}")
        print(f"  decode = {decode(ids, vocab)!r}")
    prompt = encode(prompt_text, vocab, scores, bos=True, eos=False)
    model = read_checkpoint(os.path.join(folder, "stories260K.bin"))
    continuation = greedy(prompt, 32, model)
    print(f"greedy continuation ids = {continuation}")
    print(f"  decode = {decode(continuation, vocab)!r}")


if __name__ == "__main__":
    main()
