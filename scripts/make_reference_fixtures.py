#!/usr/bin/env python3
"""Generate independent PyTorch reference fixtures for ChainLora's tests.

Self-contained: only torch, numpy and the standard library (json, struct).
No transformers / safetensors packages are used: the tiny OPT and Llama models
are implemented here from scratch following Hugging Face transformers'
semantics and parameter naming, and llama2.c's v0 ("legacy") checkpoint is
written following karpathy/llama2.c's model.py + export.py.

Run from the repository root:

    /usr/bin/python3 scripts/make_reference_fixtures.py

Output: tests/ChainLora.Tests/Fixtures/reference/<model>/...
This is a fixture generator only; it is never run by CI.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "ChainLora.Tests", "Fixtures", "reference")

SEED = 1234
SIG_DIGITS = 6
GREEDY_NEW_TOKENS = 8
NEG = torch.finfo(torch.float32).min  # additive / fill value for masked scores

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


# --------------------------------------------------------------------------
# safetensors writer / reader (own implementation)
# --------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> float32 torch tensor. Keys sorted, offsets contiguous."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = t.numpy().astype("<f4", copy=False).tobytes(order="C")
        header[name] = {
            "dtype": "F32",
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (-len(hjson)) % 8
    hjson += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    expected = 0
    for name in sorted(k for k in header if k != "__metadata__"):
        info = header[name]
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        assert b == expected, (name, b, expected)
        expected = e
        arr = np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    assert base + expected == len(raw)
    return out


# --------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------

def rnd(x):
    return float(f"{x:.{SIG_DIGITS}g}")


def to_list(t):
    if t.dtype.is_floating_point:
        arr = t.detach().to(torch.float64).numpy()
        return np.vectorize(rnd, otypes=[object])(arr).tolist() if arr.ndim else rnd(float(arr))
    return t.detach().tolist()


def dump_json(path, obj, compact=True):
    with open(path, "w") as f:
        if compact:
            json.dump(obj, f, separators=(",", ":"))
        else:
            json.dump(obj, f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------
# random init helpers
# --------------------------------------------------------------------------

def mat(*shape):
    return torch.randn(*shape) * 0.2


def bias(n):
    return torch.randn(n) * 0.05


def norm_w(n):
    return 1.0 + 0.1 * torch.randn(n)


# --------------------------------------------------------------------------
# common attention
# --------------------------------------------------------------------------

def attention_mask_4d(attention_mask, T):
    """bool [B,1,T,T]: causal AND key-not-padded."""
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    keys = attention_mask.bool()[:, None, None, :]
    return causal[None, None] & keys


def sdpa(q, k, v, allowed, scale_q=None, scale_scores=None):
    """q,k,v [B,H,T,hd]. Masked scores are filled with finfo.min (fully masked
    query rows -> uniform softmax, never NaN; only pad query rows are affected)."""
    scores = q @ k.transpose(-1, -2)
    if scale_scores is not None:
        scores = scores * scale_scores
    scores = scores.masked_fill(~allowed, NEG)
    p = torch.softmax(scores.float(), dim=-1)
    return p @ v


# --------------------------------------------------------------------------
# OPT
# --------------------------------------------------------------------------

def opt_config(pre_ln, proj_dim):
    return {
        "_remove_final_layer_norm": False,
        "activation_dropout": 0.0,
        "activation_function": "relu",
        "architectures": ["OPTForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 2,
        "do_layer_norm_before": pre_ln,
        "dropout": 0.0,
        "enable_bias": True,
        "eos_token_id": 2,
        "ffn_dim": 64,
        "hidden_size": 32,
        "init_std": 0.02,
        "layer_norm_elementwise_affine": True,
        "layerdrop": 0.0,
        "max_position_embeddings": 64,
        "model_type": "opt",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 1,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": 64,
        "word_embed_proj_dim": proj_dim,
    }


def opt_init(cfg):
    V, H, L = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"]
    P, FF = cfg["word_embed_proj_dim"], cfg["ffn_dim"]
    w = {}
    p = "model.decoder."
    w[p + "embed_tokens.weight"] = mat(V, P)
    w[p + "embed_positions.weight"] = mat(cfg["max_position_embeddings"] + 2, H)
    if P != H:
        w[p + "project_in.weight"] = mat(H, P)
        w[p + "project_out.weight"] = mat(P, H)
    if cfg["do_layer_norm_before"] and not cfg["_remove_final_layer_norm"]:
        w[p + "final_layer_norm.weight"] = norm_w(H)
        w[p + "final_layer_norm.bias"] = bias(H)
    for i in range(L):
        lp = f"{p}layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[lp + f"self_attn.{n}.weight"] = mat(H, H)
            w[lp + f"self_attn.{n}.bias"] = bias(H)
        w[lp + "self_attn_layer_norm.weight"] = norm_w(H)
        w[lp + "self_attn_layer_norm.bias"] = bias(H)
        w[lp + "fc1.weight"] = mat(FF, H)
        w[lp + "fc1.bias"] = bias(FF)
        w[lp + "fc2.weight"] = mat(H, FF)
        w[lp + "fc2.bias"] = bias(H)
        w[lp + "final_layer_norm.weight"] = norm_w(H)
        w[lp + "final_layer_norm.bias"] = bias(H)
    return w


def opt_position_ids(attention_mask):
    """HF OPTLearnedPositionalEmbedding: (cumsum(mask)*mask - 1) + offset 2.
    Pad positions therefore map to embedding row 1."""
    m = attention_mask.long()
    return (torch.cumsum(m, dim=1) * m - 1) + 2


def opt_forward(cfg, w, input_ids, attention_mask):
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = H // nh
    B, T = input_ids.shape
    pre = cfg["do_layer_norm_before"]
    p = "model.decoder."
    ln = lambda x, n: F.layer_norm(x, (H,), w[n + ".weight"], w[n + ".bias"], eps=1e-5)
    lin = lambda x, n: F.linear(x, w[n + ".weight"], w.get(n + ".bias"))

    x = F.embedding(input_ids, w[p + "embed_tokens.weight"])
    if (p + "project_in.weight") in w:
        x = F.linear(x, w[p + "project_in.weight"])
    x = x + F.embedding(opt_position_ids(attention_mask), w[p + "embed_positions.weight"])
    allowed = attention_mask_4d(attention_mask, T)

    for i in range(cfg["num_hidden_layers"]):
        lp = f"{p}layers.{i}."
        res = x
        h = ln(x, lp + "self_attn_layer_norm") if pre else x
        q = lin(h, lp + "self_attn.q_proj") * (hd ** -0.5)
        k = lin(h, lp + "self_attn.k_proj")
        v = lin(h, lp + "self_attn.v_proj")
        sh = lambda t: t.view(B, T, nh, hd).transpose(1, 2)
        a = sdpa(sh(q), sh(k), sh(v), allowed)
        a = a.transpose(1, 2).reshape(B, T, H)
        x = res + lin(a, lp + "self_attn.out_proj")
        if not pre:
            x = ln(x, lp + "self_attn_layer_norm")
        res = x
        h = ln(x, lp + "final_layer_norm") if pre else x
        h = lin(torch.relu(lin(h, lp + "fc1")), lp + "fc2")
        x = res + h
        if not pre:
            x = ln(x, lp + "final_layer_norm")

    if (p + "final_layer_norm.weight") in w:
        x = ln(x, p + "final_layer_norm")
    if (p + "project_out.weight") in w:
        x = F.linear(x, w[p + "project_out.weight"])
    return F.linear(x, w[p + "embed_tokens.weight"])  # tied lm_head


# --------------------------------------------------------------------------
# Llama (HF layout, rotate-half RoPE)
# --------------------------------------------------------------------------

def llama_config(n_kv, tied):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": 8,
        "hidden_act": "silu",
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 48,
        "max_position_embeddings": 64,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": n_kv,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tied,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": 64,
    }


def llama_init(cfg):
    V, H, L, I = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = H // nh
    w = {"model.embed_tokens.weight": mat(V, H)}
    for i in range(L):
        lp = f"model.layers.{i}."
        w[lp + "self_attn.q_proj.weight"] = mat(nh * hd, H)
        w[lp + "self_attn.k_proj.weight"] = mat(nkv * hd, H)
        w[lp + "self_attn.v_proj.weight"] = mat(nkv * hd, H)
        w[lp + "self_attn.o_proj.weight"] = mat(H, nh * hd)
        w[lp + "mlp.gate_proj.weight"] = mat(I, H)
        w[lp + "mlp.up_proj.weight"] = mat(I, H)
        w[lp + "mlp.down_proj.weight"] = mat(H, I)
        w[lp + "input_layernorm.weight"] = norm_w(H)
        w[lp + "post_attention_layernorm.weight"] = norm_w(H)
    w["model.norm.weight"] = norm_w(H)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = mat(V, H)
    return w


def rms_norm(x, weight, eps):
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama_position_ids(attention_mask):
    return (torch.cumsum(attention_mask.long(), dim=1) - 1).clamp(min=0)


def llama_forward(cfg, w, input_ids, attention_mask, position_ids=None, linear=None):
    """Logits [B,T,V]. linear(x, name) computes each projection (default: F.linear with w[name + ".weight"]);
    make_training_reference.py passes one that adds PEFT's LoRA path to the adapted layers."""
    if linear is None:
        linear = lambda x, name: F.linear(x, w[name + ".weight"])
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = H // nh
    rep = nh // nkv
    eps = cfg["rms_norm_eps"]
    B, T = input_ids.shape
    if position_ids is None:
        position_ids = llama_position_ids(attention_mask)

    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = position_ids.float()[:, :, None] * inv_freq[None, None, :]  # [B,T,hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B,1,T,hd]

    allowed = attention_mask_4d(attention_mask, T)
    x = F.embedding(input_ids, w["model.embed_tokens.weight"])
    for i in range(cfg["num_hidden_layers"]):
        lp = f"model.layers.{i}."
        h = rms_norm(x, w[lp + "input_layernorm.weight"], eps)
        q = linear(h, lp + "self_attn.q_proj").view(B, T, nh, hd).transpose(1, 2)
        k = linear(h, lp + "self_attn.k_proj").view(B, T, nkv, hd).transpose(1, 2)
        v = linear(h, lp + "self_attn.v_proj").view(B, T, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: query head j uses kv head j // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        a = sdpa(q, k, v, allowed, scale_scores=hd ** -0.5)
        a = a.transpose(1, 2).reshape(B, T, nh * hd)
        x = x + linear(a, lp + "self_attn.o_proj")
        h = rms_norm(x, w[lp + "post_attention_layernorm.weight"], eps)
        g = linear(h, lp + "mlp.gate_proj")
        u = linear(h, lp + "mlp.up_proj")
        x = x + linear(F.silu(g) * u, lp + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    return F.linear(x, head)


# --------------------------------------------------------------------------
# llama2.c (karpathy model.py semantics, interleaved RoPE)
# --------------------------------------------------------------------------

L2C = dict(dim=16, hidden_dim=40, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=32, seq_len=32)


def l2c_init(p):
    d, hd_, L = p["dim"], p["hidden_dim"], p["n_layers"]
    hs = d // p["n_heads"]
    kvd = p["n_kv_heads"] * hs
    w = {"tok_embeddings": mat(p["vocab_size"], d)}
    w["attention_norm"] = [norm_w(d) for _ in range(L)]
    w["wq"] = [mat(p["n_heads"] * hs, d) for _ in range(L)]
    w["wk"] = [mat(kvd, d) for _ in range(L)]
    w["wv"] = [mat(kvd, d) for _ in range(L)]
    w["wo"] = [mat(d, p["n_heads"] * hs) for _ in range(L)]
    w["ffn_norm"] = [norm_w(d) for _ in range(L)]
    w["w1"] = [mat(hd_, d) for _ in range(L)]
    w["w2"] = [mat(d, hd_) for _ in range(L)]
    w["w3"] = [mat(hd_, d) for _ in range(L)]
    w["norm"] = norm_w(d)
    return w


def l2c_freqs(head_dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.cos(freqs), torch.sin(freqs)


def l2c_rope(x, cos, sin):
    # x [B,T,H,hd]; interleaved pairs (x0,x1),(x2,x3),...
    xr, xi = x.float().reshape(x.shape[:-1] + (-1, 2)).unbind(-1)
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out_r = xr * c - xi * s
    out_i = xr * s + xi * c
    return torch.stack([out_r, out_i], dim=-1).flatten(3)


def l2c_forward(p, w, tokens):
    d, nh, nkv = p["dim"], p["n_heads"], p["n_kv_heads"]
    hs = d // nh
    rep = nh // nkv
    B, T = tokens.shape
    cos, sin = l2c_freqs(hs, p["seq_len"])
    cos, sin = cos[:T], sin[:T]
    rms = lambda x, wt: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * wt
    x = F.embedding(tokens, w["tok_embeddings"])
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None]
    for l in range(p["n_layers"]):
        h = rms(x, w["attention_norm"][l])
        q = F.linear(h, w["wq"][l]).view(B, T, nh, hs)
        k = F.linear(h, w["wk"][l]).view(B, T, nkv, hs)
        v = F.linear(h, w["wv"][l]).view(B, T, nkv, hs)
        q, k = l2c_rope(q, cos, sin), l2c_rope(k, cos, sin)
        # llama2.c repeat_kv: x[:, :, :, None, :].expand(...).reshape -> head j uses kv j // rep
        k = k[:, :, :, None, :].expand(B, T, nkv, rep, hs).reshape(B, T, nh, hs)
        v = v[:, :, :, None, :].expand(B, T, nkv, rep, hs).reshape(B, T, nh, hs)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        a = sdpa(q, k, v, mask, scale_scores=1.0 / math.sqrt(hs))
        a = a.transpose(1, 2).reshape(B, T, d)
        x = x + F.linear(a, w["wo"][l])
        h = rms(x, w["ffn_norm"][l])
        x = x + F.linear(F.silu(F.linear(h, w["w1"][l])) * F.linear(h, w["w3"][l]), w["w2"][l])
    x = rms(x, w["norm"])
    return F.linear(x, w["tok_embeddings"])


def l2c_write_v0(path, p, w):
    hs = p["dim"] // p["n_heads"]
    cos, sin = l2c_freqs(hs, p["seq_len"])
    header = struct.pack("<7i", p["dim"], p["hidden_dim"], p["n_layers"], p["n_heads"],
                         p["n_kv_heads"], p["vocab_size"], p["seq_len"])  # positive vocab => shared classifier
    parts = [w["tok_embeddings"]]
    for key in ("attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"):
        parts.extend(w[key])
    parts += [w["norm"], cos[: p["seq_len"]], sin[: p["seq_len"]]]
    with open(path, "wb") as f:
        f.write(header)
        for t in parts:
            f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


def l2c_read_v0(path):
    with open(path, "rb") as f:
        raw = f.read()
    d, hd_, L, nh, nkv, V, S = struct.unpack("<7i", raw[:28])
    data = np.frombuffer(raw[28:], dtype="<f4")
    hs = d // nh
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        t = torch.from_numpy(data[pos:pos + n].copy()).view(*shape)
        pos += n
        return t

    w = {"tok_embeddings": take(abs(V), d)}
    w["attention_norm"] = list(take(L, d))
    w["wq"] = list(take(L, nh * hs, d))
    w["wk"] = list(take(L, nkv * hs, d))
    w["wv"] = list(take(L, nkv * hs, d))
    w["wo"] = list(take(L, d, nh * hs))
    w["ffn_norm"] = list(take(L, d))
    w["w1"] = list(take(L, hd_, d))
    w["w2"] = list(take(L, d, hd_))
    w["w3"] = list(take(L, hd_, d))
    w["norm"] = take(d)
    take(S, hs // 2)
    take(S, hs // 2)
    assert V > 0 and pos == len(data), (pos, len(data))
    return dict(dim=d, hidden_dim=hd_, n_layers=L, n_heads=nh, n_kv_heads=nkv, vocab_size=V, seq_len=S), w


def l2c_to_hf(p, w):
    """Convert llama2.c (interleaved RoPE) weights to HF Llama (rotate-half) layout,
    using the same permutation as transformers' convert_llama_weights_to_hf."""
    d, nh, nkv = p["dim"], p["n_heads"], p["n_kv_heads"]

    def permute(t, heads):
        o, i = t.shape
        return t.view(heads, o // heads // 2, 2, i).transpose(1, 2).reshape(o, i)

    cfg = llama_config(nkv, True)
    cfg.update(hidden_size=d, intermediate_size=p["hidden_dim"], num_hidden_layers=p["n_layers"],
               num_attention_heads=nh, vocab_size=p["vocab_size"], head_dim=d // nh)
    hw = {"model.embed_tokens.weight": w["tok_embeddings"], "model.norm.weight": w["norm"]}
    for l in range(p["n_layers"]):
        lp = f"model.layers.{l}."
        hw[lp + "self_attn.q_proj.weight"] = permute(w["wq"][l], nh)
        hw[lp + "self_attn.k_proj.weight"] = permute(w["wk"][l], nkv)
        hw[lp + "self_attn.v_proj.weight"] = w["wv"][l]
        hw[lp + "self_attn.o_proj.weight"] = w["wo"][l]
        hw[lp + "mlp.gate_proj.weight"] = w["w1"][l]
        hw[lp + "mlp.up_proj.weight"] = w["w3"][l]
        hw[lp + "mlp.down_proj.weight"] = w["w2"][l]
        hw[lp + "input_layernorm.weight"] = w["attention_norm"][l]
        hw[lp + "post_attention_layernorm.weight"] = w["ffn_norm"][l]
    return cfg, hw


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------

def greedy(fwd, prompt, n):
    """Plain argmax decoding, full recompute each step, no EOS stopping.
    Returns (sequence, smallest top1-top2 logit gap seen: a robustness margin)."""
    seq = list(prompt)
    gap = float("inf")
    for _ in range(n):
        ids = torch.tensor([seq])
        last = fwd(ids, torch.ones_like(ids))[0, -1]
        top = last.topk(2).values
        gap = min(gap, float(top[0] - top[1]))
        seq.append(int(last.argmax()))
    return seq, gap


def mean_ce(logits, ids, pair_mask=None):
    lg = logits[:, :-1].reshape(-1, logits.shape[-1])
    tg = ids[:, 1:].reshape(-1)
    ce = F.cross_entropy(lg.double(), tg, reduction="none")
    if pair_mask is None:
        return float(ce.mean())
    m = pair_mask.reshape(-1).double()
    return float((ce * m).sum() / m.sum())


def max_abs(a, b):
    return float((a - b).abs().max())


def build_hf_model(name, cfg, w, fwd, pad_id, pos_fn):
    d = os.path.join(OUT_DIR, name)
    os.makedirs(d, exist_ok=True)
    dump_json(os.path.join(d, "config.json"), cfg, compact=False)
    st_path = os.path.join(d, "model.safetensors")
    write_safetensors(st_path, w, metadata={"format": "pt"})
    w2 = read_safetensors(st_path)
    assert sorted(w2) == sorted(w) and all(torch.equal(w[k], w2[k]) for k in w)
    w = w2  # run the reference from the exact bytes on disk
    run = lambda ids, m: fwd(cfg, w, ids, m)

    V = cfg["vocab_size"]
    g = torch.Generator().manual_seed(SEED + 7)
    ids = torch.randint(3, V, (2, 7), generator=g)
    mask = torch.ones_like(ids)
    logits = run(ids, mask)

    real = torch.randint(3, V, (4,), generator=g)
    pids = torch.stack([ids[0], torch.cat([torch.full((3,), pad_id, dtype=torch.long), real])])
    pmask = torch.tensor([[1] * 7, [0, 0, 0, 1, 1, 1, 1]])
    plogits = run(pids, pmask)

    # sanity: padded-row real positions == same 4 tokens unpadded; row 0 unchanged
    solo = run(real[None], torch.ones(1, 4, dtype=torch.long))
    e1 = max_abs(plogits[1, 3:], solo[0])
    e0 = max_abs(plogits[0], logits[0])
    assert e1 < 1e-5 and e0 < 1e-5, (name, e1, e0)
    # sanity: batched row equals single-row run
    e2 = max_abs(run(ids[1:], mask[1:])[0], logits[1])
    assert e2 < 1e-5, (name, e2)

    pair = (pmask[:, :-1] * pmask[:, 1:])
    out = {
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "position_ids": pos_fn(mask).tolist(),
        "logits": to_list(logits),
        "loss": mean_ce(logits, ids),
        "padded": {
            "pad_token_id": pad_id,
            "input_ids": pids.tolist(),
            "attention_mask": pmask.tolist(),
            "valid": pmask.tolist(),
            "position_ids": pos_fn(pmask).tolist(),
            "logits": to_list(plogits),
            "loss_valid_pairs": mean_ce(plogits, pids, pair),
        },
    }
    dump_json(os.path.join(d, "logits.json"), out)

    prompt = ids[0].tolist()
    seq, gap = greedy(run, prompt, GREEDY_NEW_TOKENS)
    dump_json(os.path.join(d, "greedy.json"), {
        "prompt": prompt,
        "max_new_tokens": GREEDY_NEW_TOKENS,
        "new_tokens": seq[len(prompt):],
        "sequence": seq,
        "stop_on_eos": False,
        "eos_token_id": cfg["eos_token_id"],
        "min_top1_top2_gap": rnd(gap),
    })
    print(f"{name:22s} loss={out['loss']:.6f} padcheck={e1:.2e} rowcheck={e2:.2e} greedy={seq[len(prompt):]}")
    return logits


def build_llama2c():
    d = os.path.join(OUT_DIR, "llama2c-tiny")
    os.makedirs(d, exist_ok=True)
    w = l2c_init(L2C)
    path = os.path.join(d, "model.bin")
    l2c_write_v0(path, L2C, w)
    p, w = l2c_read_v0(path)
    assert p == L2C
    g = torch.Generator().manual_seed(SEED + 11)
    ids = torch.cat([torch.tensor([1]), torch.randint(3, p["vocab_size"], (8,), generator=g)])[None]
    logits = l2c_forward(p, w, ids)

    # cross-check: permuted to HF rotate-half layout, the HF Llama forward must agree
    cfg, hw = l2c_to_hf(p, w)
    hl = llama_forward(cfg, hw, ids, torch.ones_like(ids))
    e = max_abs(hl, logits)
    assert e < 1e-5, e

    seq, gap = greedy(lambda t, m: l2c_forward(p, w, t), ids[0].tolist(), GREEDY_NEW_TOKENS)
    dump_json(os.path.join(d, "logits.json"), {
        "config": p,
        "input_ids": ids.tolist(),
        "logits": to_list(logits),
        "loss": mean_ce(logits, ids),
        "greedy_new_tokens": seq[ids.shape[1]:],
        "greedy_min_top1_top2_gap": rnd(gap),
    })
    print(f"{'llama2c-tiny':22s} loss={mean_ce(logits, ids):.6f} hf-crosscheck={e:.2e} greedy={seq[ids.shape[1]:]}")


def main():
    torch.manual_seed(SEED)
    os.makedirs(OUT_DIR, exist_ok=True)
    models = [
        ("opt-preln", opt_config(True, 32), opt_forward, 1, opt_position_ids),
        ("opt-postln", opt_config(False, 16), opt_forward, 1, opt_position_ids),
        ("opt-preln-projected", opt_config(True, 16), opt_forward, 1, opt_position_ids),
        ("llama-gqa", llama_config(2, False), llama_forward, 0, llama_position_ids),
        ("llama-tied", llama_config(4, True), llama_forward, 0, llama_position_ids),
    ]
    for name, cfg, fwd, pad, pos_fn in models:
        torch.manual_seed(SEED + sum(map(ord, name)))
        init = opt_init if cfg["model_type"] == "opt" else llama_init
        build_hf_model(name, cfg, init(cfg), fwd, pad, pos_fn)
    torch.manual_seed(SEED + 99)
    build_llama2c()

    total = 0
    for dp, _, fs in os.walk(OUT_DIR):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    print(f"total fixture bytes: {total}")


if __name__ == "__main__":
    sys.exit(main())
