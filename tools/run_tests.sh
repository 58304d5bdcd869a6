#!/usr/bin/env bash
# The project's test command: the whole suite on this checkout's environment (.venv/,
# installed or brought up to date by tools/install.sh first).
#
#   tools/run_tests.sh            the whole suite (about 20 minutes on 2 cores)
#   tools/run_tests.sh ARGS...    pytest ARGS (e.g. -m "not slow" for the fast tests,
#                                 about a minute)
#
# The version matrix (the core tests on torch 2.1 and on the OneDL fork, each in an
# environment of its own, about 5 GB) is tools/run_stack_tests.sh; CI runs both.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash "$ROOT/tools/install.sh" tests || exit $?
echo "[mmlion tests] main stack: $("${VENV:-$ROOT/.venv}/bin/python" -c \
    'import torch, mmengine; print(f"torch {torch.__version__}, mmengine {mmengine.__version__}")')"
exec "${VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
