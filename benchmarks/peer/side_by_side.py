#!/usr/bin/env python3
"""Times ChainLora's training step (`chainlora bench`) and the PyTorch eager peer alternately, in
one run, and prints tokens/s of both and their ratio per shape and dtype.

Run from the repository root after `dotnet build -c Release`:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 benchmarks/peer/side_by_side.py
Options: --rounds R (alternations, median taken), --steps N, --shapes a,b --dtypes fp32,bf16 --markdown FILE,
--no-cola (skip the COLA run that measures the chain's peak RSS against LoRA's)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OURS = os.path.join(ROOT, "src", "ChainLora.Cli", "bin", "Release", "net10.0", "ChainLora.Cli.dll")
PEER = os.path.join(ROOT, "benchmarks", "peer", "peer_lora_step.py")
DEFAULT_BATCH = {"llama110m": 4}


def run(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="tiny260k,llama15m")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--method", default="lora")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--markdown")
    ap.add_argument("--no-cola", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(OURS):
        sys.exit(f"{OURS} not found: run `dotnet build -c Release` first")
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)

    rows = []
    for shape in args.shapes.split(","):
        for dtype in args.dtypes.split(","):
            batch = DEFAULT_BATCH.get(shape, 8)
            common = ["--shape", shape, "--method", args.method, "--base-dtype", dtype, "--batch", str(batch),
                      "--seq", str(args.seq), "--steps", str(args.steps), "--warmup", str(args.warmup), "--json"]
            ours, peer, cola = [], [], []
            for _ in range(args.rounds):
                ours.append(run(["dotnet", OURS, "bench", *common], env))
                peer.append(run([sys.executable, PEER, *common], env))
                if not args.no_cola and args.method == "lora":
                    cola_args = [a if a != "lora" else "cola" for a in common]
                    cola.append(run(["dotnet", OURS, "bench", *cola_args], env))
            o = statistics.median(r["tokens_per_s"] for r in ours)
            p = statistics.median(r["tokens_per_s"] for r in peer)
            row = {
                "shape": shape, "dtype": dtype, "batch": batch, "ours_tok_s": o, "peer_tok_s": p, "ratio": o / p,
                "ours_mfu": statistics.median(r["mfu"] for r in ours),
                # Medians over rounds: one process's high-water mark moves by a few % with the allocator's luck.
                "ours_rss_mb": statistics.median(r["peak_rss_mb"] for r in ours),
                "peer_rss_mb": statistics.median(r["peak_rss_mb"] for r in peer),
                "ours_cola_rss_mb": statistics.median(r["peak_rss_mb"] for r in cola) if cola else None,
                "ours_cola_tok_s": statistics.median(r["tokens_per_s"] for r in cola) if cola else None,
                "knot_ms": statistics.median(r["knot_s"] for r in cola) * 1000 if cola else None,
                "knot_fraction_of_link": statistics.median(r["knot_fraction_of_link"] for r in cola) if cola else None,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)

    lines = ["| shape | dtype | batch | ChainLora tok/s | PyTorch tok/s | ratio | ChainLora MFU | peak RSS MB: LoRA / COLA / peer | knot ms (share of a link) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cola_rss = f"{r['ours_cola_rss_mb']:.0f} ({r['ours_cola_rss_mb'] / r['ours_rss_mb'] - 1:+.1%})" if r["ours_cola_rss_mb"] else "-"
        knot = f"{r['knot_ms']:.1f} ({r['knot_fraction_of_link']:.3%})" if r["knot_ms"] is not None else "-"
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['batch']} | {r['ours_tok_s']:.0f} | {r['peer_tok_s']:.0f} | "
                     f"{r['ratio']:.2f}x | {r['ours_mfu']:.1%} | {r['ours_rss_mb']:.0f} / {cola_rss} / {r['peer_rss_mb']:.0f} | {knot} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
