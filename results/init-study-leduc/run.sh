#!/usr/bin/env bash
# The Leduc initialization study: its source runs (a sweep), then the study over every
# iteration from 3 on, 8 inits, budgets up to 20,000 episodes, 2 repeats. Both resume
# when run again (finished runs and cells are skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/fusion-psro sweep configs/init-study-leduc-runs.toml --quiet
.venv/bin/fusion-psro init-study runs/init-study-leduc-runs/*/ \
    --inits normal,orthogonal,kaiming,inherit,fusion,shrink-perturb,fusion-reset-output,nash-distill \
    --budgets 500,2000,6000,20000 --repeats 2 --out runs/init-study-leduc --workers 2 --quiet
