#!/usr/bin/env bash
# Leduc poker, DQN oracle: PSRO (normal init) vs Fusion-PSRO vs inherited-BR init, 5 seeds,
# equal episodes. Two runs at a time (one torch thread each) on a 2-core machine.
# Usage: results/leduc-dqn-init/run.sh [RUNS_DIR]   (default: runs/leduc-dqn-init)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-runs/leduc-dqn-init}
ITERATIONS=${ITERATIONS:-15}
EPISODES=${EPISODES:-6000}
for seed in 0 1 2 3 4; do
  for init in normal fusion inherit; do
    echo "$init $seed"
  done
done | xargs -P 2 -L 1 bash -c '
  .venv/bin/fusion-psro run --game leduc_poker --oracle dqn --init "$0" --episodes '"$EPISODES"' \
    --iterations '"$ITERATIONS"' --seed "$1" --out '"$runs"'/"$0"-seed"$1" --quiet'
.venv/bin/fusion-psro report "$runs"/*-seed*
