#!/usr/bin/env python3
"""Times ChainLora's training step (`chainlora bench`) and the PyTorch eager peer alternately, in
one run, and prints tokens/s of both and their ratio per shape and dtype.

Run from the repository root after `dotnet build -c Release`:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 benchmarks/peer/side_by_side.py
Options: --rounds R (alternations, median taken), --steps N, --shapes a,b --dtypes fp32,bf16 --markdown FILE
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
            ours, peer = [], []
            for _ in range(args.rounds):
                ours.append(run(["dotnet", OURS, "bench", *common], env))
                peer.append(run([sys.executable, PEER, *common], env))
            o = statistics.median(r["tokens_per_s"] for r in ours)
            p = statistics.median(r["tokens_per_s"] for r in peer)
            row = {
                "shape": shape, "dtype": dtype, "batch": batch, "ours_tok_s": o, "peer_tok_s": p, "ratio": o / p,
                "ours_mfu": statistics.median(r["mfu"] for r in ours),
                "ours_rss_mb": max(r["peak_rss_mb"] for r in ours), "peer_rss_mb": max(r["peak_rss_mb"] for r in peer),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)

    lines = ["| shape | dtype | batch | ChainLora tok/s | PyTorch tok/s | ratio | ChainLora MFU | RSS ours / peer (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['dtype']} | {r['batch']} | {r['ours_tok_s']:.0f} | {r['peer_tok_s']:.0f} | "
                     f"{r['ratio']:.2f}x | {r['ours_mfu']:.1%} | {r['ours_rss_mb']:.0f} / {r['peer_rss_mb']:.0f} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
