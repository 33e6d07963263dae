#!/usr/bin/env bash
# Copy each pg run's config.json and metrics.jsonl into results/pg-other-games/runs/<game>/<run>
# and write one report per game.
set -euo pipefail
cd "$(dirname "$0")/../.."
for game in goofspiel liars-dice; do
    source="runs/pg-$game"; [ "$game" = goofspiel ] && source="runs/pg-goofspiel-150"  # the first runs, extended
    [ "$game" = liars-dice ] && source="runs/pg-liars-dice-30"
    [ -d "$source" ] || continue
    for run in "$source"/*/; do
        [ -f "$run/metrics.jsonl" ] || continue
        dest="results/pg-other-games/runs/$game/$(basename "$run")"
        mkdir -p "$dest" && cp "$run/config.json" "$run/metrics.jsonl" "$dest/"
    done
    .venv/bin/fusion-psro report results/pg-other-games/runs/$game/*/ --out results/pg-other-games/report-$game.md --overwrite > /dev/null
done
