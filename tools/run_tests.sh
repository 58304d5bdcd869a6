#!/usr/bin/env bash
# The project's test command: install what is missing into .venv/, then run the whole
# suite. Extra arguments go to pytest (e.g. -m "not slow" for the fast tests alone).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
cd "$ROOT"
exec "${VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
