#!/usr/bin/env bash
# Copy each run's config.json and metrics.jsonl (not checkpoints or members) into
# results/pg-leduc/runs/<experiment>/<run>, and write one report per experiment.
set -euo pipefail
cd "$(dirname "$0")/../.."
for experiment in init fusion-start meta-solver variants; do
    for run in runs/pg-leduc-$experiment/*/; do
        [ -f "$run/metrics.jsonl" ] || continue
        dest="results/pg-leduc/runs/$experiment/$(basename "$run")"
        mkdir -p "$dest" && cp "$run/config.json" "$run/metrics.jsonl" "$dest/"
    done
    .venv/bin/fusion-psro report results/pg-leduc/runs/$experiment/*/ --out results/pg-leduc/report-$experiment.md --overwrite > /dev/null

done
