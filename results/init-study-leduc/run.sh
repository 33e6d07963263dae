#!/usr/bin/env bash
# The Leduc initialization study as it was run: its source runs (a sweep: 3 PSRO and 3
# Fusion-PSRO runs, DQN, 6 iterations x 20,000 episodes), then the study over the states
# after iterations 3-6 of two Fusion-PSRO runs and after iterations 3 and 5 of three PSRO runs,
# 8 inits, budgets up to 20,000 episodes, 2 repeats. Every command resumes when run again
# (finished runs and cells are skipped). The full design (every iteration from 3 of all six
# runs: 768 cells) is the first study command without --at, over runs/init-study-leduc-runs/*/.
set -euo pipefail
cd "$(dirname "$0")/../.."
INITS=normal,orthogonal,kaiming,inherit,fusion,shrink-perturb,fusion-reset-output,nash-distill
.venv/bin/fusion-psro sweep configs/init-study-leduc-runs.toml --quiet
.venv/bin/fusion-psro init-study runs/init-study-leduc-runs/fusion-seed{0,1}/ --at 3-6 --inits "$INITS" \
    --budgets 500,2000,6000,20000 --repeats 2 --out runs/init-study-leduc --workers 2 --quiet
.venv/bin/fusion-psro init-study runs/init-study-leduc-runs/normal-seed{0,1,2}/ --at 3,5 --inits "$INITS" \
    --budgets 500,2000,6000,20000 --repeats 2 --out runs/init-study-leduc --workers 2 --quiet
