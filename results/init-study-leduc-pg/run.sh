#!/usr/bin/env bash
# The initialization study with the exact policy-gradient oracle on Leduc, at late PSRO
# states: iterations 10, 50, 100 and 150 of the four PSRO runs (scratch starts, pg oracle,
# 30 steps) of configs/pg-leduc-init.toml whose members were saved here, 8 inits, budgets
# 10, 30 and 100 steps, one repeat (the oracle is deterministic given its start; a repeat
# changes only the scratch draws). Resumes when run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/fusion-psro init-study runs/pg-leduc-init/normal-seed{0,1,2,3}/ --at 10,50,100,150 \
    --inits normal,orthogonal,kaiming,inherit,fusion,shrink-perturb,fusion-reset-output,nash-distill \
    --budgets 10,30,100 --repeats 1 --out runs/init-study-leduc-pg --workers 2 --quiet
