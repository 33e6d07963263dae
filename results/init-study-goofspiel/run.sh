#!/usr/bin/env bash
# The goofspiel(num_cards=5,imp_info=True,points_order=descending) initialization study: its source runs, then the study at iterations 3
# and 5, 8 inits, budgets up to 20,000 episodes, 1 repeat. Both resume when run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/fusion-psro sweep configs/init-study-goofspiel-runs.toml --quiet
.venv/bin/fusion-psro init-study runs/init-study-goofspiel-runs/*/ --at 3,5 \
    --inits normal,orthogonal,kaiming,inherit,fusion,shrink-perturb,fusion-reset-output,nash-distill \
    --budgets 500,2000,6000,20000 --repeats 1 --out runs/init-study-goofspiel --workers 2 --quiet
