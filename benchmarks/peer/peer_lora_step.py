#!/usr/bin/env python3
"""PyTorch peer benchmark for ChainLora: one LoRA (or full) fine-tuning step.

Minimal eager Llama / OPT models, LoRA r=8 alpha=16 on q_proj and v_proj,
AdamW on the trainable parameters, next-token cross-entropy over all positions.
Prints one JSON line with the median step time. See README.md in this folder.
"""
import argparse
import ctypes
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "tiny260k": dict(kind="llama", dim=64, hidden=172, layers=5, heads=8, kv_heads=4, vocab=512),
    "llama15m": dict(kind="llama", dim=288, hidden=768, layers=6, heads=6, kv_heads=6, vocab=32000),
    "llama110m": dict(kind="llama", dim=768, hidden=2048, layers=12, heads=12, kv_heads=12, vocab=32000),
    "opt125m": dict(kind="opt", dim=768, hidden=3072, layers=12, heads=12, kv_heads=12, vocab=50272,
                    max_pos=2048),
}
LORA_R, LORA_ALPHA = 8, 16


def frozen(mod, x):
    """Run a (possibly bf16) base module on fp32 activations; return fp32."""
    return mod(x.to(mod.weight.dtype)).float()


class LoRALinear(nn.Module):
    """Frozen base nn.Linear + trainable fp32 low-rank update (B @ A) * alpha/r."""

    def __init__(self, base: nn.Linear, r=LORA_R, alpha=LORA_ALPHA):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        # PEFT zero-inits B; small random B keeps gradients of A non-zero from step 1.
        nn.init.normal_(self.lora_B, std=0.01)
        self.scaling = alpha / r

    def forward(self, x):
        return frozen(self.base, x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scaling


def lin(mod, x):
    return mod(x) if isinstance(mod, LoRALinear) else frozen(mod, x)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(head_dim, seq, theta=10000.0):
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
    f = torch.outer(torch.arange(seq).float(), inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def causal_attention(q, k, v):
    """q: (B,H,T,D), k/v: (B,Hkv,T,D). GQA by repeating kv heads."""
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    mask = torch.full((T, T), float("-inf")).triu(1)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]) + mask
    return att.softmax(-1) @ v


class Attention(nn.Module):
    def __init__(self, dim, heads, kv_heads, bias, dtype):
        super().__init__()
        self.h, self.hkv, self.hd = heads, kv_heads, dim // heads
        self.q_proj = nn.Linear(dim, heads * self.hd, bias=bias, dtype=dtype)
        self.k_proj = nn.Linear(dim, kv_heads * self.hd, bias=bias, dtype=dtype)
        self.v_proj = nn.Linear(dim, kv_heads * self.hd, bias=bias, dtype=dtype)
        self.o_proj = nn.Linear(heads * self.hd, dim, bias=bias, dtype=dtype)

    def forward(self, x, rot=None):
        B, T, _ = x.shape
        q = lin(self.q_proj, x).view(B, T, self.h, self.hd).transpose(1, 2)
        k = lin(self.k_proj, x).view(B, T, self.hkv, self.hd).transpose(1, 2)
        v = lin(self.v_proj, x).view(B, T, self.hkv, self.hd).transpose(1, 2)
        if rot is not None:
            cos, sin = rot
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, self.h * self.hd)
        return lin(self.o_proj, y)


class LlamaBlock(nn.Module):
    def __init__(self, c, dtype):
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(c["dim"]), RMSNorm(c["dim"])
        self.attn = Attention(c["dim"], c["heads"], c["kv_heads"], False, dtype)
        self.w1 = nn.Linear(c["dim"], c["hidden"], bias=False, dtype=dtype)  # gate
        self.w3 = nn.Linear(c["dim"], c["hidden"], bias=False, dtype=dtype)  # up
        self.w2 = nn.Linear(c["hidden"], c["dim"], bias=False, dtype=dtype)  # down

    def forward(self, x, rot):
        x = x + self.attn(self.attn_norm(x), rot)
        h = self.mlp_norm(x)
        return x + lin(self.w2, F.silu(lin(self.w1, h)) * lin(self.w3, h))


class OPTBlock(nn.Module):
    def __init__(self, c, dtype):
        super().__init__()
        self.attn_norm, self.mlp_norm = nn.LayerNorm(c["dim"]), nn.LayerNorm(c["dim"])
        self.attn = Attention(c["dim"], c["heads"], c["kv_heads"], True, dtype)
        self.fc1 = nn.Linear(c["dim"], c["hidden"], dtype=dtype)
        self.fc2 = nn.Linear(c["hidden"], c["dim"], dtype=dtype)

    def forward(self, x, rot=None):
        x = x + self.attn(self.attn_norm(x))
        return x + lin(self.fc2, F.relu(lin(self.fc1, self.mlp_norm(x))))


class LM(nn.Module):
    """Llama (RMSNorm, RoPE, SwiGLU) or OPT (learned pos +2, pre-LN, ReLU); tied head."""

    def __init__(self, c, dtype):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab"], c["dim"], dtype=dtype)
        nn.init.normal_(self.embed.weight, std=0.02)
        Block = LlamaBlock if c["kind"] == "llama" else OPTBlock
        self.layers = nn.ModuleList(Block(c, dtype) for _ in range(c["layers"]))
        if c["kind"] == "llama":
            self.norm = RMSNorm(c["dim"])
        else:
            self.pos = nn.Embedding(c["max_pos"] + 2, c["dim"], dtype=dtype)
            nn.init.normal_(self.pos.weight, std=0.02)
            self.norm = nn.LayerNorm(c["dim"])
        self._rot = {}

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.embed(tokens).float()
        rot = None
        if self.c["kind"] == "llama":
            if T not in self._rot:
                self._rot[T] = rope(self.c["dim"] // self.c["heads"], T)
            rot = self._rot[T]
        else:
            x = x + self.pos(torch.arange(T) + 2).float()  # OPT position offset 2
        for layer in self.layers:
            x = layer(x, rot)
        x = self.norm(x)
        w = self.embed.weight  # tied head
        return (x.to(w.dtype) @ w.t()).float()


def add_lora(model):
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.layers:
        layer.attn.q_proj = LoRALinear(layer.attn.q_proj)
        layer.attn.v_proj = LoRALinear(layer.attn.v_proj)


def openblas():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_num_threads()
        return lib
    except (OSError, AttributeError):
        return None


def build(shape, method, base_dtype, seed=0):
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if base_dtype == "bf16" else torch.float32
    model = LM(SHAPES[shape], dtype)
    if method == "lora":
        add_lora(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3 if method == "lora" else 1e-4, weight_decay=0.0)
    return model, opt


def step(model, opt, tokens):
    opt.zero_grad(set_to_none=True)
    logits = model(tokens[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    loss.backward()
    opt.step()
    return loss.item()


def check():
    model, opt = build("tiny260k", "lora", "fp32")
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, SHAPES["tiny260k"]["vocab"], (4, 65), generator=g)
    losses = [step(model, opt, tokens) for _ in range(20)]
    print("check losses:", " ".join(f"{l:.4f}" for l in losses))
    assert losses[-1] < losses[0] - 1e-3, f"loss did not decrease: {losses[0]} -> {losses[-1]}"
    print("check OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny260k")
    ap.add_argument("--method", choices=["lora", "full"], default="lora")
    ap.add_argument("--base-dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads AND OpenBLAS threads (default: leave both as found)")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--check", action="store_true", help="20 LoRA steps on tiny260k fp32; assert loss decreases")
    a = ap.parse_args()

    blas = openblas()
    if a.threads is not None:
        torch.set_num_threads(a.threads)
        if blas is not None:
            blas.openblas_set_num_threads(a.threads)
    if a.check:
        check()
        return

    model, opt = build(a.shape, a.method, a.base_dtype)
    g = torch.Generator().manual_seed(1)
    # seq+1 tokens: inputs are tokens[:, :-1] (length seq), targets tokens[:, 1:].
    tokens = torch.randint(0, SHAPES[a.shape]["vocab"], (a.batch, a.seq + 1), generator=g)
    times, losses = [], []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        losses.append(step(model, opt, tokens))
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt)
        if not a.json:
            print(f"step {i} {'warmup' if i < a.warmup else 'timed '} {dt:.3f}s loss {losses[-1]:.4f}",
                  file=sys.stderr)
    med = statistics.median(times)
    out = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "shape": a.shape,
        "method": a.method,
        "base_dtype": a.base_dtype,
        "batch": a.batch,
        "seq": a.seq,
        "median_step_s": round(med, 6),
        "tokens_per_s": round(a.batch * a.seq / med, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": torch.get_num_threads(),
        "blas_threads": blas.openblas_get_num_threads() if blas is not None else None,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
