#!/usr/bin/env bash
# The GPU check of fusion-psro in one command, for a machine with CUDA and PyTorch but no
# package index; finishes within 10 minutes (every step has its own timeout).
#
#     scripts/device_check.sh OUTDIR             # on the GPU machine, from any directory
#     scripts/device_check.sh --dry-run OUTDIR   # here: CPU, tiny budget (checks the script itself)
#
# 1. Installs the wheels placed beside this script (scripts/wheels/*.whl, or the directory
#    named by WHEELS; fetch them with scripts/fetch_device_wheels.sh DIR where pip reaches an
#    index): pip install --no-index --no-deps --target /tmp/site.
# 2. Runs the tests that have CUDA variants with FUSION_PSRO_TEST_DEVICE=cuda and
#    PYTHONPATH=/tmp/site:src.
# 3. Runs benchmarks/bench_batched.py, every section with --gpu (its GPU sizes), each with
#    what is left of the budget shared among the sections still to run.
# Everything goes to OUTDIR: nvidia-smi.txt, environment.txt, install.log, tests.log,
# bench-SECTION.log, results_batched.md, and summary.txt (each step's exit status).
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

step() {  # step NAME SECONDS LOG COMMAND...: run with a timeout, log its output, record its status
    local name=$1 seconds=$2 log=$3; shift 3
    echo "== $name (timeout ${seconds}s)" | tee -a "$summary"
    timeout --kill-after=10 "$seconds" "$@" > "$log" 2>&1
    local status=$?
    tail -n 5 "$log"
    echo "$name: exit $status ($(( $(date +%s) - started )) s since start)" | tee -a "$summary"
    return 0
}

cd "$root" || exit 2
{ nvidia-smi 2>&1 || echo "nvidia-smi: not available"; } > "$out/nvidia-smi.txt"
shopt -s nullglob
found=("$wheels"/*.whl "$here"/*.whl)
if [ ${#found[@]} -gt 0 ]; then
    step install 90 "$out/install.log" "$python" -m pip install --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$site" "${found[@]}"
else
    echo "install: no wheels in $wheels or $here; using what $python has" | tee -a "$summary" "$out/install.log"
fi
export PYTHONPATH="$site:$root/src" PYTHONUNBUFFERED=1
"$python" - > "$out/environment.txt" 2>&1 <<'PY'
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
    sections=($("$python" benchmarks/bench_batched.py --list-sections 2>/dev/null))
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
