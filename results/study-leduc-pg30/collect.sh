#!/usr/bin/env bash
# Copy the finished runs of the study (config.json, metrics.jsonl, manifest.json; not the
# checkpoints or members, 330 MB a run) and the protocol the sweep recorded before its first
# run into results/study-leduc-pg30 (the same depth as the sweep's directory, so the protocol record's
# path to its config still holds), and write the report. A run still going is left out, so
# the report's endpoint is always the mean over iterations 76-150.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=runs/study-leduc-pg30 dest=results/study-leduc-pg30
mkdir -p "$dest" && cp "$src/protocol.json" "$dest/"
for run in "$src"/*/; do
    rows=$(wc -l < "$run/metrics.jsonl" 2>/dev/null || echo 0)
    [ "$rows" -eq 150 ] || continue
    mkdir -p "$dest/$(basename "$run")"
    cp "$run/config.json" "$run/metrics.jsonl" "$run/manifest.json" "$dest/$(basename "$run")/"
done
.venv/bin/fusion-psro report "$dest" --out "$dest/report.md" --overwrite --quiet > /dev/null
echo "$(ls "$dest"/*/metrics.jsonl | wc -l) finished runs; report: $dest/report.md"
