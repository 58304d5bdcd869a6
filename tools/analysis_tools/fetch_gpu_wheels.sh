#!/usr/bin/env bash
# Fetch, ahead, the wheels tools/analysis_tools/gpu_check.sh installs on a GPU machine
# that reaches no package registry: mmengine and the pure-Python packages such a machine
# may lack (its torch, Triton and numpy are its own). Into .gpu_wheels/ (ignored by git;
# pass it to the device tool's `carry`). Settings: PY_VERSION (default 3.12, the lent
# H200's), WHEELS (default .gpu_wheels).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WHEELS="${WHEELS:-$ROOT/.gpu_wheels}"
PY_VERSION="${PY_VERSION:-3.12}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
PACKAGES=("mmengine==0.10.7" addict yapf termcolor platformdirs tomli
          pytest pluggy iniconfig packaging pygments "lion-pytorch==0.2.3" ninja)
mkdir -p "$WHEELS"
echo "[fetch_gpu_wheels] ${PACKAGES[*]} for Python $PY_VERSION into $WHEELS"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --platform manylinux2014_x86_64 --implementation cp --dest "$WHEELS" "${PACKAGES[@]}"
ls -1 "$WHEELS"
du -sh "$WHEELS"
