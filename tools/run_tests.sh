#!/usr/bin/env bash
# The project's test command.
#
#   tools/run_tests.sh            the whole suite on the main stack (.venv/, installed
#                                 by tools/install.sh), then the core tests on the other
#                                 supported stacks (tools/install_stack.sh): the oldest
#                                 torch (2.1) and the OneDL fork of MMEngine
#   tools/run_tests.sh ARGS...    pytest ARGS on the main stack alone
#                                 (e.g. -m "not slow" for the fast tests)
#
# STACKS="torch2.1 onedl" (or "") chooses the other stacks either way. The core tests
# are those that need neither mmcv nor a GPU: the optimizer, registry, guard, wrappers,
# hooks and kernels, and the config checks read from MMEngine's code. The exit status is the first failure's.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ $# -eq 0 ]; then STACKS="${STACKS-torch2.1 onedl}"; else STACKS="${STACKS-}"; fi
CORE_TESTS=(tests/test_optim tests/test_registry.py tests/test_utils tests/test_engine tests/test_ops tests/test_layers.py
            tests/test_cli/test_key_check.py tests/test_cli/test_work_dir_lock.py)

bash "$ROOT/tools/install.sh" tests || exit $?
status=0
echo "[mmlion tests] main stack: $("${VENV:-$ROOT/.venv}/bin/python" -c \
    'import torch, mmengine; print(f"torch {torch.__version__}, mmengine {mmengine.__version__}")')"
"${VENV:-$ROOT/.venv}/bin/python" -m pytest "$@" || status=$?

for stack in $STACKS; do
    py="$(bash "$ROOT/tools/install_stack.sh" "$stack" | tail -1)" || { [ $status -eq 0 ] && status=1; continue; }
    echo "[mmlion tests] stack $stack: $("$py" -c \
        'import sys, torch, mmengine; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, mmengine {mmengine.__version__}")')"
    "$py" -m pytest -m "not slow" -p no:cacheprovider "${CORE_TESTS[@]}" || {
        rc=$?; [ $status -eq 0 ] && status=$rc; }
done
exit $status
