#!/usr/bin/env python3
"""Independent PyTorch reference for ChainLora's training loop: LoRA and a 2-link COLA chain.

The model is the tiny Llama of tests/ChainLora.Tests/Fixtures/reference/llama-gqa (its config and
weights, read back from the committed safetensors), run by the Llama forward of
make_reference_fixtures.py (transformers' semantics, plain torch). On it this script trains, as
Hugging Face Trainer + PEFT would with the settings written beside each run:

  LoRA     PEFT's lora.Linear on q_proj, v_proj, down_proj: y = W0 x + (alpha / r) B A x, A (r, in)
           drawn as PEFT draws it (kaiming_uniform_, a = sqrt 5), B (out, r) = 0. Only A and B train.
  AdamW    torch.optim.AdamW with betas (0.9, 0.999), eps 1e-8 and the weight decay given (torch's
           own default, 0.01, is not ChainLora's 0), on A and B only.
  schedule transformers' get_linear_schedule_with_warmup over the whole budget: the rate of step t
           (0-based) is lr * (T - t) / T without warmup, set before the step as LambdaLR is.
  loss     LlamaForCausalLM's: mean cross-entropy of each next token over the batch; with
           accumulation each micro-batch's loss / n is back-propagated, and the step's loss is their sum.
  clipping torch.nn.utils.clip_grad_norm_ on A and B when max_grad_norm > 0.
  COLA     Algorithm 1 of the paper: at the knot W0 <- W0 + (alpha / r) B A (PEFT's merge, in fp32),
           then a fresh A, B = 0 and a fresh AdamW; the schedule goes on over the whole budget
           (ChainLora's default variant "paper", no rewarm).

Every initial A is written into the fixture (9 significant digits, exact in fp32), so ChainLora's
test starts from the same values: what is compared is the training, not two random generators.

Run from the repository root:

    /usr/bin/python3 scripts/make_training_reference.py

Output: tests/ChainLora.Tests/Fixtures/reference/training/expected.json. Fixture generator only;
CI never runs it.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference_fixtures import OUT_DIR, dump_json, llama_forward, read_safetensors  # noqa: E402

torch.set_num_threads(1)

MODEL = "llama-gqa"
SEED = 2311
RANK, ALPHA = 4, 6.0
TARGETS = ["q_proj", "v_proj", "down_proj"]
BATCHES, BATCH_SIZE, LENGTH, EPOCHS = 4, 2, 8, 2
# Not ChainLora's default rate (1e-4): at 1e-4 eight steps move the loss by less than the tolerance
# would notice; at 1e-2 a wrong rate, schedule or optimizer state shows in every step.
LR = 1e-2

RUNS = {
    # ChainLora's defaults but the rate: no weight decay, no clipping, no accumulation, no warmup.
    "lora": dict(method="lora", links=1, weight_decay=0.0, max_grad_norm=0.0, accumulation=1),
    # The same budget cut into two links at the epoch boundary (ChainLora's default knot placement).
    "cola": dict(method="cola", links=2, weight_decay=0.0, max_grad_norm=0.0, accumulation=1),
    # The other options a step goes through: decoupled weight decay, clipping (the norm exceeds the
    # bound at every step) and accumulation of two micro-batches per step.
    "lora-decay-clip-accumulate": dict(method="lora", links=1, weight_decay=0.1, max_grad_norm=0.05, accumulation=2),
}


def f32(t):
    """A tensor as nested lists of floats that read back exactly in fp32 (9 significant digits)."""
    return [f32(x) for x in t] if t.dim() else float(f"{float(t):.9g}")


def adapted_layers(cfg):
    """Adapted module paths, in model order, with (out, in) of each."""
    H, I, nh, nkv = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = H // nh
    shapes = {"q_proj": ("self_attn", nh * hd, H), "v_proj": ("self_attn", nkv * hd, H), "down_proj": ("mlp", H, I)}
    return [(f"model.layers.{i}.{shapes[t][0]}.{t}", shapes[t][1], shapes[t][2])
            for i in range(cfg["num_hidden_layers"]) for t in TARGETS]


def peft_init_a(rank, fan_in, generator):
    """PEFT's reset_lora_parameters: nn.init.kaiming_uniform_(lora_A, a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in))."""
    a = torch.empty(rank, fan_in)
    bound = math.sqrt(6.0 / ((1 + 5) * fan_in))
    return a.uniform_(-bound, bound, generator=generator)


def linear_schedule(step, total, warmup=0):
    """transformers.optimization.get_linear_schedule_with_warmup's lr_lambda."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def train(cfg, w0, batches, run, initial):
    """Trains one run; returns its step losses, the merged weights after each knot and the final A, B."""
    w = {k: v.clone() for k, v in w0.items()}
    layers = adapted_layers(cfg)
    scaling = ALPHA / RANK
    micro = run["accumulation"]
    steps_per_epoch = len(batches) // micro
    total = steps_per_epoch * EPOCHS
    knot_every = total // run["links"]  # links of whole epochs, as ChainLora lays out M <= epochs
    assert knot_every * run["links"] == total and knot_every % steps_per_epoch == 0

    lora = {}

    def start_link(link):
        for name, out_f, _ in layers:
            a = initial[link][name].clone().requires_grad_(True)
            b = torch.zeros(out_f, RANK, requires_grad=True)
            lora[name] = (a, b)
        params = [p for ab in lora.values() for p in ab]
        return params, torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=run["weight_decay"])

    def linear(x, name):
        y = F.linear(x, w[name + ".weight"])
        if name in lora:
            a, b = lora[name]
            y = y + F.linear(F.linear(x, a), b) * scaling  # PEFT: lora_B(lora_A(dropout(x))) * scaling
        return y

    params, opt = start_link(0)
    losses, merged = [], []
    step = 0
    for epoch in range(EPOCHS):
        for s in range(steps_per_epoch):
            if step > 0 and step % knot_every == 0:
                with torch.no_grad():
                    for name, _, _ in layers:
                        a, b = lora[name]
                        w[name + ".weight"] += (b @ a) * scaling  # PEFT's merge: W += get_delta_weight()
                merged.append({name: w[name + ".weight"].clone() for name, _, _ in layers})
                params, opt = start_link(step // knot_every)
            loss_sum = 0.0
            for m in range(micro):
                ids = batches[s * micro + m]
                logits = llama_forward(cfg, w, ids, torch.ones_like(ids), linear=linear)
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)) / micro
                loss.backward()
                loss_sum += float(loss)
            if run["max_grad_norm"] > 0:
                norm = float(torch.nn.utils.clip_grad_norm_(params, run["max_grad_norm"]))
                assert norm > run["max_grad_norm"], (step, norm)  # clipping must engage for the run to test it
            for g in opt.param_groups:
                g["lr"] = LR * linear_schedule(step, total)
            opt.step()
            opt.zero_grad()
            losses.append(loss_sum)
            step += 1
    final = {name: {"A": f32(a.detach()), "B": f32(b.detach())} for name, (a, b) in lora.items()}
    return losses, merged, final


def main():
    src = os.path.join(OUT_DIR, MODEL)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    w0 = read_safetensors(os.path.join(src, "model.safetensors"))

    g = torch.Generator().manual_seed(SEED)
    batches = [torch.randint(3, cfg["vocab_size"], (BATCH_SIZE, LENGTH), generator=g) for _ in range(BATCHES)]
    max_links = max(r["links"] for r in RUNS.values())
    # One draw per link, shared by the runs: every run's link k starts from the same A.
    initial = [{name: peft_init_a(RANK, fan_in, g) for name, _, fan_in in adapted_layers(cfg)} for _ in range(max_links)]
    # The values as written are the values trained from.
    initial = [{k: torch.tensor(f32(v)) for k, v in link.items()} for link in initial]

    out = {
        "model": MODEL,
        "rank": RANK,
        "alpha": ALPHA,
        "targets": TARGETS,
        "learning_rate": LR,
        "epochs": EPOCHS,
        "optimizer": {"kind": "adamw", "betas": [0.9, 0.999], "eps": 1e-8},
        "schedule": "linear decay over the whole budget, no warmup",
        "batches": [b.tolist() for b in batches],
        "initial_a": [{k: f32(v) for k, v in link.items()} for link in initial],
        "runs": {},
    }
    for name, run in RUNS.items():
        losses, merged, final = train(cfg, w0, batches, run, initial)
        out["runs"][name] = dict(run, losses=losses,
                                 merged_after_knots=[{k: f32(v) for k, v in m.items()} for m in merged],
                                 final=final)
        moved = max(float((m[k] - w0[k + ".weight"]).abs().max()) for m in merged for k in m) if merged else 0.0
        print(f"{name:28s} losses {' '.join(f'{x:.5f}' for x in losses)}" + (f"  knot max |dW| {moved:.3e}" if merged else ""))

    d = os.path.join(OUT_DIR, "training")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "expected.json")
    dump_json(path, out)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    sys.exit(main())
