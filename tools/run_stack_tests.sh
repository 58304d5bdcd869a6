#!/usr/bin/env bash
# The version matrix: mmlion's core tests on the other supported stacks
# (tools/install_stack.sh): the oldest torch (2.1, upstream mmengine) and the OneDL fork
# of MMEngine (newest torch). CI runs it after the suite (.ci/run); nobody needs it to
# test their own environment (that is tools/run_tests.sh).
#
#   tools/run_stack_tests.sh            both stacks
#   STACKS=onedl tools/run_stack_tests.sh
#
# Each stack is a virtual environment made once under ~/.cache/mmlion/stacks/ (about
# 5 GB on disk each: PyPI's torch builds carry CUDA) and reused. The core tests are those
# that need neither mmcv nor a GPU: the optimizer, registry, guard, wrappers, hooks,
# kernels, and the config checks that read MMEngine's code. The exit status is the first
# failure's.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACKS="${STACKS:-torch2.1 onedl}"
CORE_TESTS=(tests/test_optim tests/test_registry.py tests/test_utils tests/test_engine tests/test_ops
            tests/test_layers.py tests/test_cli/test_key_check.py tests/test_cli/test_work_dir_lock.py)
CACHE="${MMLION_CACHE:-$HOME/.cache/mmlion}/stacks"

status=0
for stack in $STACKS; do
    if ! ls -d "$CACHE/$stack"-* >/dev/null 2>&1; then
        echo "[mmlion tests] stack $stack: not built yet; making it downloads torch and" \
             "its CUDA libraries from PyPI (about 5 GB on disk under $CACHE, once)" >&2
    fi
    py="$(bash "$ROOT/tools/install_stack.sh" "$stack" | tail -1)" || { [ $status -eq 0 ] && status=1; continue; }
    echo "[mmlion tests] stack $stack: $("$py" -c \
        'import sys, torch, mmengine; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, mmengine {mmengine.__version__}")')"
    "$py" -m pytest -m "not slow" -p no:cacheprovider "${CORE_TESTS[@]}" || {
        rc=$?; [ $status -eq 0 ] && status=$rc; }
done
exit $status
