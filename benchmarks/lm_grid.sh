#!/usr/bin/env bash
# Runs the lm-task grids of issue 12 into runs/lm (finished cells are skipped, so rerun it each
# session until the reports are complete), then writes docs/results/lm. JOBS workers with THREADS
# torch threads each (default 1 and 1, leaving a core for other work; JOBS=2 when the machine is
# otherwise idle: two one-thread workers do ~16k tokens/s against ~13k for one two-thread worker).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-1}"
jobs="${JOBS:-1}"
dotnet build src/ChainLora.Cli -c Release -v q >/dev/null
# The grid runs from its own copy of the build, so rebuilding the repository meanwhile cannot change
# (or break) the program its workers start.
rm -rf runs/.grid-bin && mkdir -p runs && cp -r src/ChainLora.Cli/bin/Release/net10.0 runs/.grid-bin
cli=(dotnet runs/.grid-bin/ChainLora.Cli.dll)
for config in experiments/lm-converged.json experiments/lm-ablations.json; do
  "${cli[@]}" experiment --config "$config" --out runs/lm --jobs "$jobs" --threads "$threads" || true
done
"${cli[@]}" report runs/lm --out docs/results/lm
