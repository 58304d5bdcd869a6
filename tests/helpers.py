"""What the tests share: the repository's paths, the one way to run mmlion's tools in
a subprocess, loading a tool script as a module, and the demo's Shapes data."""
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Dict, List, Optional

from mmlion.utils import versions

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.join(ROOT, 'tests')
DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py')
ZERO_DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_2xb8-lion-zero-24e_shapes.py')
FSDP_DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_2xb8-lion-fsdp-24e_shapes.py')
DEEPSPEED_DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_2xb8-lion-deepspeed-24e_shapes.py')
VIT_DEMO = osp.join(ROOT, 'configs/lion/demo/vit-tiny-p4_1xb32-lion-6e_shapes-crops.py')
SEGFORMER_DEMO = osp.join(ROOT, 'configs/lion/demo/segformer-mit-b0_1xb8-lion-400i_shapes-masks.py')
SHAPES = osp.join(ROOT, 'data', 'shapes')
# Why a feature cannot run on the installed versions (None where it can): the tests
# that need it skip with this reason, the one mmlion's own refusal gives.
FSDP2_UNSUPPORTED = versions.unsupported('FSDP2 (fully_shard) and DTensor parameters', 'torch',
                                         versions.torch_version(),
                                         versions.SUPPORTED['fsdp2_torch'])
# On PYTHONPATH, it makes torchvision importable for mmpretrain (see its sitecustomize.py).
TORCHVISION_SHIM = osp.join(TESTS, 'torchvision_cpu')


def tool_env(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment a tool runs in: this checkout and tests/ importable (the test
    models and hooks that configs load with custom_imports)."""
    env = dict(os.environ, **(env or {}))
    env['PYTHONPATH'] = os.pathsep.join([ROOT, TESTS, env.get('PYTHONPATH', '')])
    env.setdefault('PYTHON', sys.executable)  # what tools/dist_*.sh run
    return env


def run_tool(cmd: List[str], timeout: int = 900, env: Optional[Dict[str, str]] = None,
             expect_rc: Optional[int] = 0, log: Optional[str] = None) -> str:
    """Run ``cmd`` from the repository root; check its exit status (``expect_rc=None``:
    any failure) and return stdout + stderr. ``log`` keeps the whole output."""
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=tool_env(env))
    out = proc.stdout + proc.stderr
    if log is not None:
        with open(log, 'a') as f:
            f.write(f'$ {" ".join(map(str, cmd))}\n{out}\n')
    if expect_rc is None:
        assert proc.returncode != 0, f'{cmd} should have failed\n{out[-3000:]}'
    else:
        first_error = max(out.find('Traceback'), 0)
        assert proc.returncode == expect_rc, \
            f'{cmd} (rc {proc.returncode})\n{out[first_error:][:3000]}\n...\n{out[-3000:]}'
    return out


def python_tool(script: str, *args, **kwargs) -> str:
    """:func:`run_tool` for ``python tools/...``."""
    return run_tool([sys.executable, script, *map(str, args)], **kwargs)


def load_tool(relative: str):
    """A script under tools/ as a module (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        osp.basename(relative)[:-3].replace('-', '_'), osp.join(ROOT, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_shapes(root: str = SHAPES) -> str:
    """The demo's Shapes data, as tools/run_main.sh makes it."""
    return load_tool('tools/dataset_converters/generate_shapes.py').generate(root, quiet=True)


def free_port() -> int:
    """A TCP port no one listens on now, for a process group's rendezvous."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def png_size(path: str):
    """(width, height) of a PNG a tool wrote, which must hold a real figure."""
    import matplotlib.image
    assert osp.getsize(path) > 5_000
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height
