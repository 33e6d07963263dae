#!/usr/bin/env bash
# Download the wheels scripts/device_check.sh installs on a GPU machine without a package
# index (Python 3.12, x86-64 manylinux; the machine is assumed to have only torch, numpy,
# scipy and pytest). Run where pip reaches an index:
#
#     scripts/fetch_device_wheels.sh DIR      # then copy DIR beside device_check.sh (or pass it as WHEELS=DIR)
#
# 1. Without their dependencies: what importing fusion_psro, its GPU tests and
#    benchmarks/bench_batched.py needs (open_spiel and what open_spiel.python.policy imports:
#    absl-py, attrs, ml_collections, PyYAML; safetensors, threadpoolctl, tqdm; pgx and svgwrite,
#    which the play benchmark uses where JAX is present, and skips otherwise).
# 2. With their dependencies: the other runtime dependencies of pyproject.toml (ray, matplotlib,
#    rliable, arch, pandas), then the wheels of what the machine has (torch, numpy, scipy,
#    CUDA libraries, JAX) are removed again.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 DIR   (the directory the wheels are downloaded into)" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
download() {
    python3 -m pip download --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" "$@"
}
download --no-deps open_spiel==2.0.2 absl-py attrs ml_collections PyYAML "safetensors>=0.4" "threadpoolctl>=3.1" \
    "tqdm>=4.66" pgx==2.6.0 svgwrite
download "ray>=2.9" "matplotlib>=3.8" "rliable>=1.2" "arch<8" "pandas<3"
rm -f "$dir"/torch-*.whl "$dir"/numpy-*.whl "$dir"/scipy-*.whl "$dir"/nvidia_*.whl "$dir"/triton-*.whl \
    "$dir"/jax-*.whl "$dir"/jaxlib-*.whl
ls -1 "$dir"
