#!/usr/bin/env bash
# One-shot check of mmlion's CUDA paths on a machine with one CUDA GPU, torch and Triton
# (the lent H200), in under 8 minutes. It needs no network: mmengine and the
# pure-Python packages such a machine may lack come from wheels fetched ahead by
# tools/analysis_tools/fetch_gpu_wheels.sh into .gpu_wheels/ (carried with the working
# tree), installed into a throwaway venv that sees the machine's own torch and Triton
# (nothing of the machine's is replaced). Writes logs, JSON and gpu_check.md under $OUT.
#
#   bash tools/analysis_tools/fetch_gpu_wheels.sh                # here, once
#   OUT=gpu_check_out bash tools/analysis_tools/gpu_check.sh     # on the GPU machine
#
# Steps (each with its own time limit; a failed step is reported and the rest still run):
#   0. mmlion's C++ extension, compiled at first use (the step plan's checks; without a
#      compiler the rest runs without a plan, slower, and the log says so)
#   1. the Triton kernel's tests on CUDA (not the interpreter), the host plan's tests,
#      the no-host-sync, graph-capture and side-stream tests
#   2. the host overhead of the fused step (benchmark_optimizers.py --host-overhead)
#   3. the kernel's own bandwidth against a device-to-device copy (kernel_bandwidth.py)
#   4. the step benchmark, fp32 and bf16 (benchmark_optimizers.py --device cuda)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/gpu_check_out}"
WHEELS="${WHEELS:-$ROOT/.gpu_wheels}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
cd "$ROOT"

VENV="$(mktemp -d)/venv"
echo "[gpu_check] venv $VENV (system site-packages: the machine's torch and Triton)"
"$PYTHON" -m venv --system-site-packages "$VENV"
PY="$VENV/bin/python"
missing=()
for wheel in "$WHEELS"/*.whl; do
    name="$(basename "$wheel" | cut -d- -f1)"
    "$PY" -c "import importlib.metadata as m; m.version('${name//_/-}')" 2>/dev/null \
        || missing+=("$wheel")
done
if [ "${#missing[@]}" -gt 0 ]; then
    "$PY" -m pip install --quiet --no-index --no-deps "${missing[@]}"
fi
export PYTHONPATH="$ROOT" TRITON_INTERPRET=0
"$PY" -c "import torch, triton, mmengine, mmlion; print('torch', torch.__version__, 'triton',
triton.__version__, 'mmengine', mmengine.__version__, torch.cuda.get_device_name())" \
    | tee "$OUT/versions.txt"

SUMMARY="$OUT/gpu_check.md"
echo "# mmlion GPU check, $(date -u +%F)" > "$SUMMARY"
cat "$OUT/versions.txt" >> "$SUMMARY"
step() {  # step NAME SECONDS COMMAND...
    local name="$1" limit="$2"
    shift 2
    echo "[gpu_check] $name (at most ${limit}s)"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "[gpu_check] $name: rc $rc in $((SECONDS - start))s"
    printf '\n## %s (rc %s, %ss)\n\n' "$name" "$rc" "$((SECONDS - start))" >> "$SUMMARY"
    grep -E '^\||passed|failed|host overhead|error|extension' "$OUT/$name.log" | tail -60 \
        >> "$SUMMARY"
}
step build_extension 90 "$PY" -c "from mmlion.ops.loader import CPU
print('mmlion C++ extension:', CPU.get() or 'not built, ' + CPU.load_error())"
step kernel_tests 150 "$PY" -m pytest -q -p no:cacheprovider -rs \
    tests/test_ops/test_lion_triton.py tests/test_optim/test_step_plan.py
# the step plan against no plan and a plain Lion on the GPU, and the bf16 rounding
# (test_bf16_is_rounded_to_nearest_even_as_torch_does, in kernel_tests) compiled
step plan_differential 90 "$PY" -m pytest -q -p no:cacheprovider -rs -k triton \
    tests/test_optim/test_step_plan_differential.py
step host_overhead 45 "$PY" tools/analysis_tools/benchmark_optimizers.py --host-overhead \
    --threads 4
step kernel_bandwidth 45 "$PY" tools/analysis_tools/kernel_bandwidth.py \
    --json "$OUT/kernel_bandwidth.json"
step benchmark_fp32 75 "$PY" tools/analysis_tools/benchmark_optimizers.py --device cuda \
    --dtype fp32 --steps 20 --json "$OUT/benchmark_fp32.json"
step benchmark_bf16 75 "$PY" tools/analysis_tools/benchmark_optimizers.py --device cuda \
    --dtype bf16 --steps 20 --json "$OUT/benchmark_bf16.json"
echo "[gpu_check] wrote $SUMMARY"
