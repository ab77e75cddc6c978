#!/usr/bin/env bash
# One call on the lent GPU machine (docs/results/performance.md, GPU section): checks the self-
# contained publish runs on the machine's PyTorch through CHAINLORA_LIBTORCH, compares a seeded
# train run on CUDA with the same run on the CPU, then runs the side-by-side table.
# Prepared here (ignored folder .gpu/): pub.tar.xz (a self-contained publish without the bundled
# libtorch), s260/ (stories260K) and tinystories-sample.txt. Usage: benchmarks/gpu/run_on_device.sh OUT [BUDGET_S]
set -uo pipefail
out="${1:?OUT folder}"; budget="${2:-420}"
cd "$(dirname "$0")/../.."
mkdir -p "$out"
tar -xJf .gpu/pub.tar.xz -C /tmp
export CHAINLORA_LIBTORCH="$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')"
export CHAINLORA_CACHE=/tmp/chainlora-cache
cl=/tmp/pub/ChainLora.Cli
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
python3 -c 'import torch,transformers,peft;print("torch",torch.__version__,"transformers",transformers.__version__,"peft",peft.__version__)' | tee -a "$out/device.txt"
# 1. The publish on the machine's libtorch, on the GPU.
if ! timeout 120 $cl bench --shape tiny260k --device cuda --base-dtype bf16 --steps 2 --warmup 1 --json > "$out/smoke.json" 2> "$out/smoke.err"; then
  echo "smoke failed:"; tail -5 "$out/smoke.err"; exit 1
fi
cat "$out/smoke.json"
# 2. Same seed, same run: 16 steps of a COLA chain on stories260K, on CUDA and on the CPU.
for dev in cuda cpu; do
  timeout 120 $cl train --model .gpu/s260 --task lm --data .gpu/tinystories-sample.txt --method cola --chain-length 2 --epochs 1 \
    --num-train 64 --num-dev 16 --num-eval 32 --batch-size 4 --context 128 --lr 0.003 --seed 0 --device $dev --out /tmp/seed-$dev --json \
    > "$out/seed-$dev.json" 2> "$out/seed-$dev.err" || tail -3 "$out/seed-$dev.err"
done
python3 - "$out" <<'PY' | tee "$out/seed.txt"
import json, sys
out = sys.argv[1]
r = {d: json.load(open(f"/tmp/seed-{d}/result.json")) for d in ("cuda", "cpu")}
def losses(x): return [l for link in x["training"]["links"] for l in link["losses"]]
lc, lp = losses(r["cuda"]), losses(r["cpu"])
print("test", {d: r[d].get("test") for d in r})
print("max |step loss cuda - cpu| =", max(abs(a - b) for a, b in zip(lc, lp)), "over", len(lc), "steps")
PY
# 3. The table.
PYTHONUNBUFFERED=1 python3 benchmarks/gpu/side_by_side.py --chainlora $cl --out "$out" --budget "$budget"
# 4. The activation lever alone: Llama-2-7B LoRA with the fp32 residual stream of the CPU default.
timeout 120 $cl bench --shape llama-2-7b --method lora --base-dtype bf16 --batch 8 --seq 512 --steps 4 --warmup 2 --device cuda \
  --activations fp32 --json | tee "$out/fp32-activations.json"
