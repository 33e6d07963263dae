#!/usr/bin/env bash
# PSRO-level comparison of the best new init (chosen from the Leduc initialization study by
# choose_init.py, a rule fixed before the study ran) with fusion, inherit and normal.
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python results/leduc-new-init/choose_init.py runs/init-study-leduc configs/leduc-new-init.toml
.venv/bin/fusion-psro sweep configs/leduc-new-init.toml --quiet
