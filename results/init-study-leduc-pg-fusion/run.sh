#!/usr/bin/env bash
# The initialization study with the exact policy-gradient oracle on Leduc, at states of PSRO
# runs with scratch starts AND of Fusion-PSRO runs (whose members share ancestry): iterations
# 10, 50, 100 and 150 of seeds 0-3 of the normal and fusion arms of the mechanism study
# (configs/study-leduc-pg30.toml, run first), 8 inits, budgets 10, 30 and 100 steps, one
# repeat. Intervals are clustered by source run. Resumes when run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/fusion-psro init-study runs/study-leduc-pg30/normal-seed{0,1,2,3}/ runs/study-leduc-pg30/fusion-seed{0,1,2,3}/ \
    --at 10,50,100,150 \
    --inits normal,orthogonal,kaiming,inherit,fusion,shrink-perturb,fusion-reset-output,nash-distill \
    --budgets 10,30,100 --repeats 1 --out runs/init-study-leduc-pg30 --workers 2 --quiet
rm -rf results/init-study-leduc-pg-fusion/study
cp -r runs/init-study-leduc-pg30 results/init-study-leduc-pg-fusion/study
