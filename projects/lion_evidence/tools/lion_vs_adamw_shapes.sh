#!/usr/bin/env bash
# docs/evidence.md's Lion-vs-AdamW figure and table, in one command: trains the demo's AdamW
# twin and the Lion config converted from it (tools/misc/adamw_to_lion.py), one after
# the other, under /usr/bin/time -v (wall time, peak RSS), then compares their logs.
# About 10 minutes on 2 cores. Settings from the environment:
#   EPOCHS   epochs per run (default 24, as in docs/evidence.md)
#   OUT      where runs, times and the figure go (default work_dirs/lion_vs_adamw)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
bash tools/install.sh
PY=.venv/bin/python
EPOCHS="${EPOCHS:-24}"
OUT="${OUT:-work_dirs/lion_vs_adamw}"
mkdir -p "$OUT"
"$PY" tools/dataset_converters/generate_shapes.py data/shapes
for name in adamw lion-converted; do
    echo "[lion_vs_adamw] training $name for $EPOCHS epochs (log: $OUT/$name.out)"
    /usr/bin/time -v -o "$OUT/$name.time" "$PY" tools/train.py \
        "configs/lion/demo/rtmdet_tiny_1xb16-$name-24e_shapes.py" --work-dir "$OUT/$name" \
        --cfg-options "train_cfg.max_epochs=$EPOCHS" "train_cfg.val_interval=$(( EPOCHS < 8 ? EPOCHS : 8 ))" \
        > "$OUT/$name.out" 2>&1
done
"$PY" tools/analysis_tools/compare_runs.py "$OUT/lion-converted" "$OUT/adamw" \
    --labels "Lion (converted)" AdamW --out "$OUT/lion_vs_adamw_shapes.png"
for name in lion-converted adamw; do
    printf '%s: %s, peak RSS %s MiB\n' "$name" \
        "$(grep 'Elapsed (wall clock)' "$OUT/$name.time" | awk '{print $NF}')" \
        "$(( $(grep 'Maximum resident set size' "$OUT/$name.time" | awk '{print $NF}') / 1024 ))"
done
