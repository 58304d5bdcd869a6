#!/usr/bin/env bash
# Install what mmlion's main job or its tests need into .venv/ inside the checkout, then
# mmlion itself (editable, with its fused kernel). Safe to re-run: a second run with
# nothing to do takes seconds.
#
#   tools/install.sh runtime   the main job's stack: torch, MMEngine, mmcv (built from
#                              source against that torch), mmdet, pycocotools, mmlion
#   tools/install.sh tests     the runtime stack, plus what the tests and the evidence
#                              tools use: pytest, triton, deepspeed, mmseg, mmpretrain,
#                              scikit-learn/-image, the benchmark's peers (the default)
#
# Settings from the environment:
#   PYTHON      interpreter that creates the venv            (default: python3)
#   VENV        where the environment lives                  (default: <repo>/.venv)
#   MAX_JOBS    compile jobs for mmcv's ops and mmlion's kernel (default: nproc)
set -euo pipefail

LEVEL="${1:-tests}"
case "$LEVEL" in runtime|tests) ;; *)
    echo "tools/install.sh: unknown level '$LEVEL' (runtime or tests)" >&2; exit 2 ;;
esac
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --progress-bar off)

TORCH_SPEC="torch==2.13.0"   # the CPU build on this project's machines
RUNTIME=("setuptools<80" wheel ninja numpy "mmengine==0.10.7" pycocotools)
# scikit-learn ships the digits data and scikit-image the LFW subset: the evidence's
# real datasets, with no download. triton runs the fused GPU kernel's tests on the CPU
# in its interpreter (TRITON_INTERPRET=1); 3.6.0 is what the GPU machines' torch brings.
TESTS=(-r "$ROOT/requirements/tests.txt" "triton==3.6.0")
RUNTIME_CHECK="import mmlion, mmdet, mmcv.ops; from mmlion.ops import _C"
TESTS_CHECK="$RUNTIME_CHECK; import mmseg, mmpretrain, triton, deepspeed, pytest, sklearn, skimage"
STAMP="$VENV/.mmlion-install-$LEVEL"
stamp_value() {
    cat "$ROOT/tools/install.sh" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT"/requirements/*.txt \
        "$ROOT"/mmlion/ops/csrc/*.cpp "$ROOT"/mmlion/ops/build.py | sha256sum | cut -c1-16
}

step() { printf '\n[mmlion install %s %s] %s\n' "$LEVEL" "$1" "${*:2}"; }

check="$RUNTIME_CHECK"; [ "$LEVEL" = tests ] && check="$TESTS_CHECK"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ] \
    && "$PY" -c "$check" 2>/dev/null \
    && { [ "$LEVEL" = runtime ] || [ -d "$VENV/torchvision-cpu/torchvision" ]; }; then
    echo "[mmlion install $LEVEL] $VENV is up to date"
    exit 0
fi
N=6; [ "$LEVEL" = tests ] && N=7

if [ ! -x "$PY" ]; then
    step 1/$N "creating the virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
else
    step 1/$N "using the virtual environment $VENV"
fi

if "$PY" -c "import torch" 2>/dev/null; then
    step 2/$N "keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
    step 2/$N "installing $TORCH_SPEC"
    "${PIP[@]}" "$TORCH_SPEC" "setuptools<80"
fi

step 3/$N "installing mmengine and the build tools"
"${PIP[@]}" "${RUNTIME[@]}"

if "$PY" -c "import mmcv.ops" 2>/dev/null; then
    step 4/$N "mmcv with compiled ops is already installed"
else
    step 4/$N "installing mmcv 2.1.0 with its compiled ops (no wheel exists for this torch:" \
        "the first build takes about 20 minutes on 2 cores, later ones reuse pip's cache)"
    MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation -v "mmcv==2.1.0" 2>&1 \
        | grep --line-buffered -E '^(Building|Created|Successfully|Collecting|Using cached|ERROR|error)|\[[0-9]+/[0-9]+\]' || true
    "$PY" -c "import mmcv.ops" || { echo "mmcv's compiled ops failed to install" >&2; exit 1; }
fi

step 5/$N "installing mmdet 3.3.0"
"${PIP[@]}" "mmdet==3.3.0"

if [ "$LEVEL" = tests ]; then
    step 6/$N "installing the test and evidence tools, deepspeed, mmsegmentation and mmpretrain"
    "${PIP[@]}" "${TESTS[@]}"
    # lion-pytorch is a peer the benchmark and the registry tests compare against;
    # --no-deps keeps its loose `torch` requirement from touching the installed torch.
    "${PIP[@]}" --no-deps lion-pytorch
    # deepspeed runs Lion under MMEngine's DeepSpeedStrategy (ZeRO) in the tests.
    # --no-deps and --no-build-isolation: its setup imports the installed torch and must
    # not replace it; its pure-Python requirements follow.
    "${PIP[@]}" --no-deps --no-build-isolation "deepspeed==0.19.8"
    "${PIP[@]}" hjson einops msgpack psutil py-cpuinfo pydantic
    # timm's Lion is the other peer. --no-deps: timm wants torchvision, which has no CPU
    # build here; the benchmark loads timm/optim/lion.py alone, which needs torch only.
    "${PIP[@]}" --no-deps timm
    # mmsegmentation's and mmpretrain's pins would replace the installed stack: --no-deps,
    # and their pure-Python requirements follow (ftfy and regex for mmseg's text models).
    "${PIP[@]}" --no-deps "mmsegmentation==1.2.2" "mmpretrain==1.2.0"
    "${PIP[@]}" ftfy regex prettytable scipy einops importlib-metadata mat4py modelindex rich
    # mmpretrain imports torchvision. The registry's only torchvision for torch 2.13 is a
    # CUDA build whose operators do not load on this CPU torch, and an importable but
    # broken torchvision breaks mmengine and deepspeed: it goes into a folder of its own,
    # outside site-packages, which only the tests' shim (tests/torchvision_cpu) puts on
    # the path. On a GPU machine install the matching torchvision normally instead.
    if [ ! -d "$VENV/torchvision-cpu/torchvision" ]; then
        "${PIP[@]}" --no-deps --target "$VENV/torchvision-cpu" "torchvision==0.28.0"
    fi
fi

step $N/$N "installing mmlion (editable) and building its fused kernel"
# editable_mode=compat: a path entry, as `setup.py develop` made; setuptools' default
# import hook would also serve the checkout's compiled kernel to another copy of mmlion
# in the same process (tests/test_ops/test_loader.py installs one).
"${PIP[@]}" --no-build-isolation --no-deps --config-settings editable_mode=compat -e "$ROOT"
"$PY" -c "from mmlion.ops import lion_cpu; assert lion_cpu.available(), lion_cpu.load_error()"

stamp_value > "$STAMP"
echo "[mmlion install $LEVEL] done: $VENV"
