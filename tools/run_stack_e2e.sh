#!/usr/bin/env bash
# Opt-in and slow: the main job end to end on another supported stack, in the
# environment tools/install_stack.sh keeps for it, with mmcv built from source against
# that stack's torch (about 20 minutes the first time; kept with the environment).
#
#   tools/run_stack_e2e.sh torch2.1   torch 2.1.2, mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0
#   tools/run_stack_e2e.sh onedl-torch2.8   torch 2.8.0, onedl-mmengine 0.10.12,
#                                     onedl-mmcv 2.3.6, onedl-mmdetection 3.5.1 (onedl-mmcv
#                                     supports torch 2.4-2.8; it does not compile against
#                                     torch 2.14, whose headers need C++20)
#
# It generates the Shapes data, trains the demo detector (24 epochs), evaluates it and
# prints the bbox mAP and the wall time. Extra arguments go to tools/train.py.
set -euo pipefail
STACK="${1:?usage: tools/run_stack_e2e.sh torch2.1|onedl-torch2.8 [train.py args]}"
shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="${CONFIG:-configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py}"
WORK_DIR="${WORK_DIR:-work_dirs/e2e-$STACK}"
start=$(date +%s)
PY="$(bash "$ROOT/tools/install_stack.sh" "$STACK" --e2e | tail -1)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
echo "[mmlion e2e $STACK] $("$PY" -c 'import sys, torch, mmengine, mmcv, mmdet; print(
    f"Python {sys.version.split()[0]}, torch {torch.__version__}, mmengine {mmengine.__version__},"
    f" mmcv {mmcv.__version__}, mmdet {mmdet.__version__}")')"
"$PY" tools/dataset_converters/generate_shapes.py data/shapes
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"
"$PY" tools/test.py "$CONFIG" "$(cat "$WORK_DIR/last_checkpoint")" --work-dir "$WORK_DIR/test"
echo "[mmlion e2e $STACK] done in $(( $(date +%s) - start )) s"
