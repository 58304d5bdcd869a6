"""mmlion.ops.loader (the C++ kernels): a plain `pip install` (pip's default build
isolation, no torch to build against) still gets the fused kernel, compiled at first use
against the running torch and cached; without a compiler the optimizer falls back and
says why, once."""
import os
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, run_tool

pytestmark = pytest.mark.slow

STEP = '''
import warnings, torch, mmlion
from mmlion.ops import lion_cpu
p = torch.nn.Parameter(torch.ones(3)); p.grad = torch.ones(3)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    mmlion.Lion([p], lr=0.5).step()
print('FILE', mmlion.__file__)
print('KERNEL', lion_cpu.available())
print('STEPPED', p.detach().tolist())
print('WARNINGS', [str(w.message) for w in caught if 'kernel' in str(w.message)])
'''


def _run(code, env, cwd):
    """The step in a fresh interpreter that sees the installed copy, not the checkout."""
    return run_tool([sys.executable, '-c', code], env=env, cwd=cwd, checkout=False,
                    timeout=600)


@pytest.fixture(scope='module')
def plain_install(tmp_path_factory):
    """`pip install --use-pep517 --no-deps <sdist tree>`: an isolated build, as a user
    without `wheel` gets, into a folder of its own."""
    source = tmp_path_factory.mktemp('source')  # the tracked files, as an sdist holds
    tracked = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    for relative in tracked:
        if os.path.isfile(os.path.join(ROOT, relative)):
            os.makedirs(source / os.path.dirname(relative), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, relative), source / relative)
    target = tmp_path_factory.mktemp('site')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--use-pep517', '--no-deps', '--quiet',
                    '--target', str(target), str(source)], check=True, timeout=600,
                   env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1'))
    assert not list(target.glob('mmlion/ops/_C*.so'))  # isolated: built without the kernel
    return target


def test_plain_pip_install_compiles_the_kernel_at_first_use(plain_install, tmp_path):
    env = dict(PYTHONPATH=str(plain_install), MMLION_EXT_CACHE=str(tmp_path / 'cache'))
    out = _run(STEP, env, cwd=tmp_path)
    assert f'FILE {plain_install}' in out  # the installed copy, not the checkout
    assert 'KERNEL True' in out and 'STEPPED [0.5, 0.5, 0.5]' in out
    assert out.count('mmlion: compiling its C++ kernels') == 1
    out = _run(STEP, env, cwd=tmp_path)  # cached: no second build, no message
    assert 'KERNEL True' in out and 'compiling' not in out


def test_without_a_compiler_it_falls_back_and_says_why(plain_install, tmp_path):
    env = dict(PYTHONPATH=str(plain_install), CXX='/nonexistent/c++',
               MMLION_EXT_CACHE=str(tmp_path / 'cache'))
    out = _run(STEP, env, cwd=tmp_path)
    assert 'KERNEL False' in out and 'STEPPED [0.5, 0.5, 0.5]' in out
    assert 'compiling it at first use failed' in out and 'for-loop' in out
