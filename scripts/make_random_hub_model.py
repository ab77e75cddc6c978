#!/usr/bin/env python3
"""Writes a random-weight model folder at a real shape, laid out as the Hugging Face Hub publishes it.

For memory and speed work on the paper's models, whose weights are not available here:

    /usr/bin/python3 scripts/make_random_hub_model.py --shape opt-1.3b --out /tmp/opt-1.3b-random
    /usr/bin/python3 scripts/make_random_hub_model.py --shape llama-2-7b --out /tmp/llama-2-7b-random

opt-*: the facebook/opt-* repositories' layout: config.json, a float16 pytorch_model.bin written by
torch.save from OPTModel (keys "decoder.layers.0...", no "model." prefix, no lm_head.weight), and a
GPT-2 byte-level BPE vocab.json + merges.txt (the 256 byte symbols after OPT's four specials, so the
ids stay below vocab_size).
llama-2-7b: meta-llama/Llama-2-7b-hf's layout: config.json, float16 model-0000N-of-0000M.safetensors
shards of at most --max-shard-gb with model.safetensors.index.json, and tokenizer.model (stories260K's
SentencePiece model from ../shared, a Llama tokenizer with 512 ids).

Weights are N(0, 0.02), biases zero, norms one: finite activations through every layer. Nothing
here is committed; the output is many GB (opt-1.3b 2.6 GB, llama-2-7b 13.5 GB).
"""
import argparse
import json
import os
import shutil
import struct

import torch

SHAPES = {
    "opt-125m": dict(hidden_size=768, num_hidden_layers=12, ffn_dim=3072, num_attention_heads=12),
    "opt-1.3b": dict(hidden_size=2048, num_hidden_layers=24, ffn_dim=8192, num_attention_heads=32),
    "llama-2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32),
}


def opt_config(shape):
    c = SHAPES[shape]
    return {
        "_name_or_path": f"facebook/{shape}", "activation_dropout": 0.0, "activation_function": "relu",
        "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 2, "do_layer_norm_before": True,
        "dropout": 0.1, "eos_token_id": 2, "ffn_dim": c["ffn_dim"], "hidden_size": c["hidden_size"], "init_std": 0.02,
        "layerdrop": 0.0, "max_position_embeddings": 2048, "model_type": "opt", "num_attention_heads": c["num_attention_heads"],
        "num_hidden_layers": c["num_hidden_layers"], "pad_token_id": 1, "prefix": "</s>", "torch_dtype": "float16",
        "transformers_version": "4.21.0.dev0", "use_cache": True, "vocab_size": 50272, "word_embed_proj_dim": c["hidden_size"],
    }


def llama_config(shape):
    c = SHAPES[shape]
    return {
        "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "hidden_size": c["hidden_size"], "initializer_range": 0.02, "intermediate_size": c["intermediate_size"],
        "max_position_embeddings": 4096, "model_type": "llama", "num_attention_heads": c["num_attention_heads"],
        "num_hidden_layers": c["num_hidden_layers"], "num_key_value_heads": c["num_attention_heads"], "pretraining_tp": 1,
        "rms_norm_eps": 1e-05, "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "float16",
        "transformers_version": "4.31.0.dev0", "use_cache": True, "vocab_size": 32000,
    }


def opt_shapes(cfg):
    d, f, v = cfg["hidden_size"], cfg["ffn_dim"], cfg["vocab_size"]
    yield "decoder.embed_tokens.weight", (v, d)
    yield "decoder.embed_positions.weight", (cfg["max_position_embeddings"] + 2, d)
    yield "decoder.final_layer_norm.weight", (d,)
    yield "decoder.final_layer_norm.bias", (d,)
    for i in range(cfg["num_hidden_layers"]):
        p = f"decoder.layers.{i}."
        for m in ("k_proj", "v_proj", "q_proj", "out_proj"):
            yield p + f"self_attn.{m}.weight", (d, d)
            yield p + f"self_attn.{m}.bias", (d,)
        for n in ("self_attn_layer_norm", "final_layer_norm"):
            yield p + f"{n}.weight", (d,)
            yield p + f"{n}.bias", (d,)
        yield p + "fc1.weight", (f, d)
        yield p + "fc1.bias", (f,)
        yield p + "fc2.weight", (d, f)
        yield p + "fc2.bias", (d,)


def llama_shapes(cfg):
    d, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    yield "model.embed_tokens.weight", (v, d)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for m in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield p + f"self_attn.{m}.weight", (d, d)
        yield p + "mlp.gate_proj.weight", (f, d)
        yield p + "mlp.up_proj.weight", (f, d)
        yield p + "mlp.down_proj.weight", (d, f)
        yield p + "input_layernorm.weight", (d,)
        yield p + "post_attention_layernorm.weight", (d,)
    yield "model.norm.weight", (d,)
    yield "lm_head.weight", (v, d)


def random_tensor(name, shape, dtype, generator):
    if name.endswith(".bias"):
        return torch.zeros(shape, dtype=dtype)
    if len(shape) == 1:
        return torch.ones(shape, dtype=dtype)
    return (torch.randn(shape, generator=generator) * 0.02).to(dtype)


SAFETENSORS_DTYPES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32"}


def write_safetensors(path, tensors):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, t in tensors.items():
        n = t.numel() * t.element_size()
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for t in tensors.values():
            # numpy has no bfloat16: write the raw 16-bit patterns
            view = t.contiguous().view(torch.int16) if t.element_size() == 2 else t.contiguous()
            f.write(view.numpy().tobytes())
    os.replace(path + ".tmp", path)


def byte_level_vocab(out):
    # GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for b in range(256):
        vocab[symbols[b]] = 4 + b
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(out, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-shard-gb", type=float, default=10.0, help="safetensors shard size (Llama-2-7b-hf: 2 shards)")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    g = torch.Generator().manual_seed(a.seed)
    if a.shape.startswith("opt"):
        cfg = opt_config(a.shape)
        state = {name: random_tensor(name, shape, torch.float16, g) for name, shape in opt_shapes(cfg)}
        torch.save(state, os.path.join(a.out, "pytorch_model.bin"))
        byte_level_vocab(a.out)
    else:
        cfg = llama_config(a.shape)
        limit, shards, current, size = a.max_shard_gb * 1e9, [], {}, 0
        for name, shape in llama_shapes(cfg):
            n = 2 * torch.Size(shape).numel()
            if current and size + n > limit:
                shards.append(current)
                current, size = {}, 0
            current[name], size = shape, size + n
        shards.append(current)
        weight_map, total = {}, 0
        for i, shard in enumerate(shards):
            file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            tensors = {name: random_tensor(name, shape, torch.float16, g) for name, shape in shard.items()}
            write_safetensors(os.path.join(a.out, file), tensors)
            total += sum(t.numel() * 2 for t in tensors.values())
            weight_map.update({name: file for name in tensors})
            del tensors
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        shutil.copy(os.path.join(a.shared, "models", "stories260K", "tok512.model"), os.path.join(a.out, "tokenizer.model"))
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    print(f"wrote {a.shape} to {a.out}")


if __name__ == "__main__":
    main()
