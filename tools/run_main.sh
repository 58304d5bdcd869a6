#!/usr/bin/env bash
# The project's main job: install what is missing into .venv/, then run the optimizer
# step benchmark (table on stdout, plot and JSON under $WORK_DIR). Extra arguments go
# to the benchmark (e.g. --quick).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK_DIR="${WORK_DIR:-$ROOT/work_dirs/benchmark}"
bash "$ROOT/tools/install.sh"
mkdir -p "$WORK_DIR"
cd "$ROOT"
exec "${VENV:-$ROOT/.venv}/bin/python" tools/analysis_tools/benchmark_optimizers.py \
    --plot "$WORK_DIR/step_benchmark.png" --json "$WORK_DIR/step_benchmark.json" "$@"
