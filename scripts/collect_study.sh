#!/usr/bin/env bash
# Usage: scripts/collect_study.sh NAME
#
# Copy the finished runs of the study swept into runs/NAME (config.json, metrics.jsonl and
# manifest.json of each; not the checkpoints or members) and the protocol the sweep recorded
# before its first run into results/NAME, then write results/NAME/report.md. A run is
# finished when its manifest says so; a run still going is left out, so every run in the
# report has all its iterations. A seed that has not finished in every arm is left out too
# (run directories are named ARM-seedK), so every comparison pairs the same seeds.
# results/NAME sits at the same depth as runs/NAME, so the protocol record's path to its
# config still holds.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 NAME (a study swept into runs/NAME)" >&2; exit 2; }
cd "$(dirname "$0")/.."
name=$1 src=runs/$1 dest=results/$1
[ -f "$src/protocol.json" ] || { echo "$0: $src/protocol.json not found (no study swept into $src)" >&2; exit 2; }
python=${PYTHON:-.venv/bin/python}
mkdir -p "$dest" && cp "$src/protocol.json" "$dest/"
for run in "$src"/*/; do
    "$python" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])).get("finished") else 1)' \
        "$run/manifest.json" 2>/dev/null || continue
    mkdir -p "$dest/$(basename "$run")"
    cp "$run/config.json" "$run/metrics.jsonl" "$run/manifest.json" "$dest/$(basename "$run")/"
done
arms=$(for run in "$dest"/*-seed*/; do basename "$run"; done | sed -E 's/-seed[0-9]+$//' | sort -u)
for run in "$dest"/*-seed*/; do
    seed=$(basename "$run" | sed -E 's/.*-seed([0-9]+)$/\1/')
    for arm in $arms; do
        [ -d "$dest/$arm-seed$seed" ] || { rm -rf "$run"; break; }
    done
done
"$python" -m fusion_psro.cli report "$dest" --out "$dest/report.md" --overwrite --quiet > /dev/null
echo "$name: $(ls "$dest"/*/metrics.jsonl | wc -l) finished runs; report: $dest/report.md"
