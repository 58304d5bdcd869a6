#!/usr/bin/env bash
# The project's main job: install what is missing into .venv/, generate the Shapes
# dataset into data/shapes/ (a no-op when mmlion's intact copy is there), train RTMDet-tiny with Lion on it (one CPU process), evaluate the final
# checkpoint with MMDetection's CocoMetric and print the bbox mAP.
# Settings from the environment: CONFIG, WORK_DIR. Extra arguments go to train.py
# (e.g. --cfg-options train_cfg.max_epochs=10).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="${CONFIG:-configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py}"
WORK_DIR="${WORK_DIR:-work_dirs/$(basename "${CONFIG%.py}")}"
PY="${VENV:-$ROOT/.venv}/bin/python"

bash "$ROOT/tools/install.sh" runtime
cd "$ROOT"
echo "[mmlion main] generating the Shapes dataset (data/shapes/)"
"$PY" tools/dataset_converters/generate_shapes.py data/shapes
echo "[mmlion main] training $CONFIG (work dir $WORK_DIR)"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
CHECKPOINT="$(cat "$WORK_DIR/last_checkpoint")"
echo "[mmlion main] evaluating $CHECKPOINT"
"$PY" tools/test.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR/test"
