#!/usr/bin/env bash
# Runs the lm-task grids of issue 22 into runs/lm2 (finished cells are skipped and an interrupted
# cell resumes from its checkpoint, so rerun it each session until the report is complete), then
# writes docs/results/lm2. JOBS workers with THREADS torch threads each (default 1 and 1, leaving a
# core for other work; JOBS=2 when the machine is otherwise idle). About 12 hours of 2 cores:
# lm2-ablations 580 cells of 200 steps (~45 s each), lm2-converged 200 cells of 1600 steps (~300 s).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-1}"
jobs="${JOBS:-1}"
dotnet build src/ChainLora.Cli -c Release -v q >/dev/null
# The grid runs from its own copy of the build, so rebuilding the repository meanwhile cannot change
# (or break) the program its workers start.
rm -rf runs/.grid2-bin && mkdir -p runs && cp -r src/ChainLora.Cli/bin/Release/net10.0 runs/.grid2-bin
cli=(dotnet runs/.grid2-bin/ChainLora.Cli.dll)
for config in experiments/lm2-ablations.json experiments/lm2-converged.json; do
  "${cli[@]}" experiment --config "$config" --out runs/lm2 --jobs "$jobs" --threads "$threads" || true
done
"${cli[@]}" report runs/lm2 --out docs/results/lm2
