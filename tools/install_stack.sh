#!/usr/bin/env bash
# A virtual environment for one of the other stacks mmlion supports, for its tests:
#
#   torch2.1   the oldest supported: Python 3.10, torch 2.1.2 (PyPI's CUDA build, which
#              runs on the CPU; it brings Triton 2.1), numpy < 2, upstream mmengine 0.10.7
#   onedl      the newest: Python 3.12, torch 2.14.1, the maintained fork onedl-mmengine
#              0.10.12 (OpenCV added: onedl-mmengine does not require it, and
#              mmengine.hooks imports it)
#   onedl-torch2.8   the OneDL family as a detection user runs it: onedl-mmcv 2.3.6
#              supports torch 2.4-2.8 (it compiles as C++17, and torch 2.14's headers
#              need C++20), so Python 3.12, torch 2.8.0, onedl-mmengine 0.10.12
#
# mmlion is not installed into it: the tests import the checkout, and its fused kernel
# is compiled at first use for that torch (cached under ~/.cache/mmlion/, as a user who
# installs without --no-build-isolation gets it). The environment is kept under
# $MMLION_CACHE (default ~/.cache/mmlion/stacks/), named by a hash of its recipe, so
# that later runs on the same machine reuse it; this script deletes nothing but the
# half-made environment of its own recipe. Prints the environment's python on the last
# line of stdout (progress goes to stderr).
#   tools/install_stack.sh NAME [--e2e]   --e2e: also mmcv built from source against
#       that torch and the stack's mmdet, for tools/run_stack_e2e.sh (about 20 minutes)
set -euo pipefail

NAME="${1:?usage: tools/install_stack.sh torch2.1|onedl|onedl-torch2.8 [--e2e]}"
E2E="${2:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MMLION_CACHE:-$HOME/.cache/mmlion}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"

case "$NAME" in
    torch2.1)
        PY_VERSION=3.10
        PACKAGES=("torch==2.1.2" "numpy<2" "mmengine==0.10.7" pytest hypothesis ninja wheel
                  "setuptools<80")
        # mmcv 2.1.0 from its source release; mmdet 3.3.0 wants mmcv < 2.2.0.
        E2E_BUILD=("mmcv==2.1.0")
        E2E_PACKAGES=("mmdet==3.3.0" pycocotools scipy shapely terminaltables six) ;;
    onedl|onedl-torch2.8)
        PY_VERSION=3.12
        TORCH="torch==2.14.1"; [ "$NAME" = onedl-torch2.8 ] && TORCH="torch==2.8.0"
        PACKAGES=("$TORCH" "onedl-mmengine==0.10.12" opencv-python-headless pytest hypothesis ninja
                  wheel "setuptools<80")
        E2E_BUILD=("onedl-mmcv==2.3.6")
        E2E_PACKAGES=("onedl-mmdetection==3.5.1" pycocotools scipy shapely terminaltables six) ;;
    *)
        echo "tools/install_stack.sh: unknown stack '$NAME' (torch2.1, onedl or onedl-torch2.8)" >&2
        exit 2 ;;
esac

say() { echo "[mmlion stack $NAME] $*" >&2; }

find_python() {
    # pyenv's own folders first: its shims are on PATH but fail for versions that are
    # not selected. Each candidate must run.
    local candidate
    for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$PY_VERSION".*/bin/python"$PY_VERSION" \
                           2>/dev/null | sort -rV) "$(command -v "python$PY_VERSION" 2>/dev/null)"; do
        if [ -n "$candidate" ] && "$candidate" -c 'import venv' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    say "Python $PY_VERSION is not installed (looked under pyenv and on PATH)"
    exit 1
}

RECIPE="$(printf '%s\n' "$PY_VERSION" "${PACKAGES[@]}" | sha256sum | cut -c1-12)"
VENV="$CACHE/stacks/$NAME-$RECIPE"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --progress-bar off)
READY="$VENV/.mmlion-ready"

MADE="$VENV/.mmlion-made"   # written first: the proof that this script made the folder
if [ ! -f "$READY" ]; then
    if [ -d "$VENV" ]; then
        if [ ! -f "$MADE" ]; then
            say "$VENV exists and was not made by this script; remove it or set MMLION_CACHE"
            exit 1
        fi
        say "removing the half-made environment $VENV (this script made it)"
        rm -rf "$VENV"
    fi
    mkdir -p "$VENV"
    touch "$MADE"
    say "creating $VENV (Python $PY_VERSION: ${PACKAGES[*]}; the first time downloads torch, a few GB)"
    "$(find_python)" -m venv "$VENV"
    "${PIP[@]}" "${PACKAGES[@]}" >&2
    touch "$READY"
else
    say "using $VENV"
fi

if [ "$E2E" = --e2e ]; then
    if ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
        # pip's wheel cache keys a built mmcv by name and version only (not by torch):
        # build without it, into a folder of wheels kept for this stack.
        say "building ${E2E_BUILD[*]} against this torch (about 20 minutes on 2 cores, once)"
        WHEELS="$VENV/wheels"
        mkdir -p "$WHEELS"
        MMCV_WITH_OPS=1 "$PY" -m pip wheel --no-deps --no-build-isolation --no-cache-dir \
            -w "$WHEELS" "${E2E_BUILD[@]}" >&2
        "${PIP[@]}" --no-deps "$WHEELS"/*.whl >&2
    fi
    "$PY" -c "import mmdet" 2>/dev/null || "${PIP[@]}" "${E2E_PACKAGES[@]}" >&2
fi
echo "$PY"
