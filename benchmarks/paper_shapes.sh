#!/usr/bin/env bash
# The paper's two models at their real shapes on this machine: load a Hub-layout folder into bf16
# (peak RSS against the weights), then LoRA and COLA steps (a knot mid-run), peak RSS and MFU.
# Folders come from scripts/make_random_hub_model.py (random weights; not committed):
#   /usr/bin/python3 scripts/make_random_hub_model.py --shape opt-1.3b   --out /tmp/models/opt-1.3b
#   /usr/bin/python3 scripts/make_random_hub_model.py --shape llama-2-7b --out /tmp/models/llama-2-7b
# Usage: benchmarks/paper_shapes.sh [MODELS_DIR] > results.jsonl   (run it alone: ~30 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
models="${1:-/tmp/models}"
dotnet build -c Release src/ChainLora.Cli >&2
bench() { dotnet src/ChainLora.Cli/bin/Release/net10.0/ChainLora.Cli.dll bench --base-dtype bf16 --json "$@" | tail -n 1; }
for method in cola lora; do
  # Llama-2-7B, batch 1 x 256 (the memory target), without and then with activation checkpointing
  bench --model "$models/llama-2-7b" --method "$method" --batch 1 --seq 256 --warmup 1 --steps 4
done
bench --model "$models/llama-2-7b" --method cola --batch 1 --seq 256 --warmup 1 --steps 4 --gradient-checkpointing
for method in cola lora; do
  # OPT-1.3B at the paper's batch 8 x 256
  bench --model "$models/opt-1.3b" --method "$method" --batch 8 --seq 256 --warmup 1 --steps 4 --gradient-checkpointing
done
bench --model "$models/opt-1.3b" --method cola --batch 8 --seq 256 --warmup 1 --steps 4
