#!/usr/bin/env bash
# Download the wheels scripts/device_check.sh installs on a GPU machine without a package
# index (Python 3.12, x86-64 manylinux; the machine already has torch, numpy, scipy, jax,
# pytest). Run where pip reaches an index:
#
#     scripts/fetch_device_wheels.sh DIR      # then copy DIR beside device_check.sh (or pass it as WHEELS=DIR)
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 DIR   (the directory the wheels are downloaded into)" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" \
    open_spiel==2.0.2 ml_collections pgx==2.6.0 svgwrite
ls -1 "$dir"
