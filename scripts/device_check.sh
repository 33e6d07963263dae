#!/usr/bin/env bash
# The GPU check of fusion-psro in one command, for a machine with CUDA and PyTorch but no
# package index; finishes within 10 minutes (every step has its own timeout).
#
#     scripts/device_check.sh OUTDIR             # on the GPU machine, from any directory
#     scripts/device_check.sh --dry-run OUTDIR   # here: CPU, tiny budget (checks the script itself)
#
# 0. nvidia-smi and the environment (versions of Python, PyTorch, CUDA, the packages).
# 1. Installs the wheels placed beside this script (scripts/wheels/*.whl, or the directory
#    named by WHEELS; fetch them with scripts/fetch_device_wheels.sh DIR where pip reaches an
#    index): pip install --no-index --no-deps --target /tmp/site; then a preflight imports
#    what the tests and the benchmark import, and says loudly what is missing.
# 2. Runs the tests that have CUDA variants with FUSION_PSRO_TEST_DEVICE=cuda and
#    PYTHONPATH=/tmp/site:src.
# 3. Runs benchmarks/bench_batched.py, every section with --gpu (its GPU sizes), each with
#    what is left of the budget shared among the sections still to run.
# Everything goes to OUTDIR: nvidia-smi.txt, environment.txt, install.log, tests.log,
# bench-SECTION.log, results_batched.md, and summary.txt (each step's exit status). The
# script exits 1 naming the steps that failed (non-zero exit or timeout), else 0.
set -uo pipefail

dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--dry-run] OUTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
python=${PYTHON:-python3}
wheels=${WHEELS:-$here/wheels}
site=${SITE_DIR:-/tmp/site}
summary=$out/summary.txt
: > "$summary"
started=$(date +%s)
failed=()
# JAX (pgx, in the play benchmark) would otherwise take most of the GPU's memory at import.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

step() {  # step NAME SECONDS LOG COMMAND...: run with a timeout, log its output, record its status
    local name=$1 seconds=$2 log=$3; shift 3
    echo "== $name (timeout ${seconds}s)" | tee -a "$summary"
    timeout --kill-after=10 "$seconds" "$@" > "$log" 2>&1
    local status=$?
    tail -n 5 "$log"
    echo "$name: exit $status ($(( $(date +%s) - started )) s since start)" | tee -a "$summary"
    if [ $status -ne 0 ]; then failed+=("$name"); fi
    return $status
}

cd "$root" || exit 2
step nvidia-smi 30 "$out/nvidia-smi.txt" bash -c 'nvidia-smi 2>&1 || echo "nvidia-smi: not available"'
shopt -s nullglob
found=("$wheels"/*.whl "$here"/*.whl)
if [ ${#found[@]} -gt 0 ]; then
    step install 90 "$out/install.log" "$python" -m pip install --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$site" "${found[@]}"
else
    echo "install: no wheels in $wheels or $here; using what $python has" | tee -a "$summary" "$out/install.log"
fi
export PYTHONPATH="$site:$root/src" PYTHONUNBUFFERED=1
step environment 60 "$out/environment.txt" "$python" - <<'PY'
import platform, sys
import torch
print("python", sys.version.split()[0], platform.platform())
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
for name in ("numpy", "scipy", "pyspiel", "jax", "pgx"):
    try:
        module = __import__(name)
        print(name, getattr(module, "__version__", "?"), module.__file__)
    except Exception as exc:  # report, never stop the check
        print(name, "not importable:", exc)
PY
# What the tests (conftest.py, test_*.py) and bench_batched.py import: fail loudly here rather
# than as a collection error or a benchmark crash later.
if ! step preflight 60 "$out/preflight.log" "$python" -c 'import absl, yaml, safetensors.torch, threadpoolctl, tqdm
import pyspiel, open_spiel.python.policy, pytest, scipy.stats, torch
import fusion_psro.cli, fusion_psro.experiments.batched, fusion_psro.oracles.dqn_vectorized
import fusion_psro.games.tensor_episodes, fusion_psro.oracles.pg, fusion_psro.oracles.episode_sources'; then
    echo "PREFLIGHT FAILED: a module the tests or the benchmark import is missing (see $out/preflight.log);" \
        "add its wheel (scripts/fetch_device_wheels.sh)" | tee -a "$summary" >&2
fi

tests=(tests/test_tensor_episodes.py)
for extra in tests/test_batched.py tests/test_dqn_vectorized.py; do
    [ -f "$extra" ] && tests+=("$extra")
done
left() {  # seconds left of the 10-minute budget, less a margin for writing up
    echo $(( 570 - ($(date +%s) - started) ))
}
if [ $dry_run = 1 ]; then
    step tests 120 "$out/tests.log" "$python" -m pytest -q -x -p no:cacheprovider tests/test_tensor_episodes.py \
        -k "alias or refused or same_seed"
    step bench-play 120 "$out/bench-play.log" "$python" benchmarks/bench_batched.py --section play --device cpu \
        --sizes 256 --passes 8 --repeats 1 --output "$out/results_batched.md"
else
    FUSION_PSRO_TEST_DEVICE=cuda step tests 240 "$out/tests.log" "$python" -m pytest -q -p no:cacheprovider \
        -rs "${tests[@]}"
    # Each section on its own, with what is left of the budget shared among those still to run.
    sections=($("$python" benchmarks/bench_batched.py --list-sections 2> "$out/list-sections.log"))
    if [ ${#sections[@]} -eq 0 ]; then
        echo "list-sections: no sections ($(tail -n 1 "$out/list-sections.log"))" | tee -a "$summary"
        failed+=(list-sections)
    fi
    for index in "${!sections[@]}"; do
        name=${sections[$index]}
        share=$(( $(left) / (${#sections[@]} - index) ))
        if [ "$share" -lt 30 ]; then
            echo "bench-$name: skipped, ${share}s left" | tee -a "$summary"
            continue
        fi
        step "bench-$name" "$share" "$out/bench-$name.log" "$python" benchmarks/bench_batched.py --section "$name" \
            --gpu --output "$out/results_batched.md"
    done
fi
echo "done in $(( $(date +%s) - started )) s; files in $out" | tee -a "$summary"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED steps: ${failed[*]}" | tee -a "$summary" >&2
    exit 1
fi
