"""Installing mmlion replaces nothing: into a fresh environment that holds the OneDL
fork of MMEngine (``onedl-mmengine``, the import package ``mmengine`` under another
distribution name), ``pip install`` of the checkout, with pip's dependency resolution on,
leaves that distribution in place, and ``import mmlion`` then works with it.

The fresh environment gets onedl-mmengine from pip (its pure-Python wheel); torch and
the fork's other dependencies come from the environment ``tools/install_stack.sh onedl``
keeps, through a ``.pth`` file, so the test does not unpack a second torch.
"""
import json
import os
import os.path as osp
import sys

import pytest

from helpers import ROOT, run_tool

pytestmark = pytest.mark.slow
FORK, FORK_VERSION = 'onedl-mmengine', '0.10.12'


def _run(cmd, env=None, cwd=ROOT):
    """stdout of ``cmd``, in ``env`` as given (another venv, not this checkout)."""
    return run_tool(cmd, env=env, cwd=cwd, checkout=False, with_stderr=False)


def _distributions(python):
    listed = json.loads(_run([python, '-m', 'pip', 'list', '--format', 'json']))
    return {d['name'].lower(): d['version'] for d in listed}


@pytest.fixture(scope='module')
def stack_python():
    out = _run(['bash', osp.join(ROOT, 'tools', 'install_stack.sh'), 'onedl'])
    return out.strip().splitlines()[-1]


def test_install_keeps_the_onedl_fork_of_mmengine(tmp_path, stack_python):
    stack_site = _run([stack_python, '-c', 'import torch, os; '
                       'print(os.path.dirname(os.path.dirname(torch.__file__)))']).strip()
    env_dir = tmp_path / 'fresh'
    _run([stack_python, '-c', f'import venv; venv.create({str(env_dir)!r}, with_pip=True)'])
    python = str(env_dir / 'bin' / 'python')
    site = _run([python, '-c', 'import site; print(site.getsitepackages()[0])']).strip()
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
    _run([python, '-m', 'pip', 'install', '--no-deps', f'{FORK}=={FORK_VERSION}'], env=env)
    # torch and the fork's requirements, from the stack; appended, so the fresh
    # environment's own packages come first.
    with open(osp.join(site, 'zz_onedl_stack.pth'), 'w') as f:
        f.write(stack_site + '\n')
    before = _distributions(python)
    assert before[FORK] == FORK_VERSION

    # pip resolves mmlion's dependencies (no --no-deps); MMLION_NO_EXT skips compiling
    # the kernel in pip's isolated build (it compiles at first use instead).
    _run([python, '-m', 'pip', 'install', ROOT], env=dict(env, MMLION_NO_EXT='1'))
    after = _distributions(python)

    assert after[FORK] == before[FORK] == FORK_VERSION
    assert 'mmengine' not in after  # upstream's distribution was not installed over it
    assert {k: v for k, v in after.items() if k != 'mmlion'} == before
    out = _run([python, '-c', 'import mmlion, mmengine, importlib.metadata as m; '
                'from mmengine.registry import OPTIMIZERS; '
                'print(mmlion.__version__, mmengine.__version__, m.version("onedl-mmengine"), '
                'OPTIMIZERS.get("Lion").__module__)'], cwd=str(tmp_path))
    assert out.split() == [after['mmlion'], FORK_VERSION, FORK_VERSION, 'mmlion.optim.lion']


def test_import_without_mmengine_names_both_distributions(tmp_path):
    """A torch without any MMEngine: ``import mmlion`` says what to install."""
    probe = ('import builtins, sys\n'
             'real = builtins.__import__\n'
             'def no_mmengine(name, *a, **k):\n'
             '    if name == "mmengine" or name.startswith("mmengine."):\n'
             '        raise ImportError("No module named mmengine")\n'
             '    return real(name, *a, **k)\n'
             'builtins.__import__ = no_mmengine\n'
             'sys.path.insert(0, sys.argv[1])\n'
             'try:\n'
             '    import mmlion\n'
             'except ImportError as e:\n'
             '    print(e)\n')
    out = _run([sys.executable, '-c', probe, ROOT], cwd=str(tmp_path))
    assert 'mmlion needs MMEngine >= 0.10' in out
    assert 'pip install mmengine' in out and 'pip install onedl-mmengine' in out
