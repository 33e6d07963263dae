#!/usr/bin/env bash
# The pg-oracle experiments on Leduc (issue: fusion at the paper's iteration counts). Each
# sweep resumes its unfinished cells and skips finished ones when run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
for config in pg-leduc-init pg-leduc-fusion-start pg-leduc-meta-solver pg-leduc-variants; do
    started=$(date +%s)
    .venv/bin/fusion-psro sweep "configs/$config.toml" --quiet
    echo "$config: $(( $(date +%s) - started )) s wall" >&2
done
