"""The transformers + PEFT side of the GPU comparison: a LoRA (or COLA) training step as a Python
user writes it. Random weights at the paper's shapes, bf16 base, SDPA attention, PEFT's fp32
adapters (r=8, alpha=16, q_proj and v_proj, no dropout), AdamW (lr 1e-4), loss from
model(input_ids, labels=input_ids). A COLA knot is merge_and_unload(), a fresh adapter and a fresh
AdamW. Prints one JSON line: median step seconds, tokens/s, knot seconds, torch's peak allocation.

    python3 peft_peer.py --shape llama-2-7b --method lora --batch 8 --seq 512 [--gradient-checkpointing]
"""
import argparse
import json
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, LlamaConfig, OPTConfig

SHAPES = {
    "llama-2-7b": lambda: LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                                      rms_norm_eps=1e-5, tie_word_embeddings=False),
    "llama110m": lambda: LlamaConfig(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                                     num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=1024,
                                     rms_norm_eps=1e-5, tie_word_embeddings=True),
    "opt-1.3b": lambda: OPTConfig(vocab_size=50272, hidden_size=2048, ffn_dim=8192, num_hidden_layers=24,
                                  num_attention_heads=32, max_position_embeddings=2048, word_embed_proj_dim=2048,
                                  do_layer_norm_before=True, enable_bias=True, tie_word_embeddings=True),
}


def adapted(model):
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, optimizer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--method", choices=["lora", "cola"], default="lora")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(SHAPES[args.shape](), dtype=torch.bfloat16, attn_implementation="sdpa")
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    model, optimizer = adapted(model)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(17)
    total = args.warmup + args.steps
    knot_step = args.warmup + max(1, args.steps // 2) if args.method == "cola" else None
    durations, knot_seconds = [], 0.0
    torch.cuda.reset_peak_memory_stats()
    for step in range(total):
        ids = torch.randint(0, vocab, (args.batch, args.seq), generator=generator).cuda()
        torch.cuda.synchronize()
        start = time.perf_counter()
        if step == knot_step:
            knot = time.perf_counter()
            model = model.merge_and_unload()
            model, optimizer = adapted(model)
            torch.cuda.synchronize()
            knot_seconds = time.perf_counter() - knot
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        if step >= args.warmup and step != knot_step:
            durations.append(time.perf_counter() - start)
    median = statistics.median(durations)
    print(json.dumps({
        "impl": "transformers+peft", "torch": torch.__version__, "shape": args.shape, "method": args.method,
        "batch": args.batch, "seq": args.seq, "gradient_checkpointing": args.gradient_checkpointing,
        "median_step_s": median, "tokens_per_s": args.batch * args.seq / median, "knot_s": knot_seconds,
        "torch_max_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
    }), flush=True)


if __name__ == "__main__":
    main()
