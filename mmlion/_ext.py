"""Loader of mmlion's compiled CPU kernels (``mmlion._C``).

``pip install --no-build-isolation`` (as ``tools/install.sh`` runs it) builds the
kernels with the package. A plain ``pip install -e .`` or ``pip install <sdist>``
builds in an isolated environment without torch and so installs without them; then
the kernels are compiled here at first use against the running torch (about 30 s,
once: cached per torch and Python version under ``~/.cache/mmlion``, or
``$MMLION_EXT_CACHE``), with one line saying so. Without a compiler or ``ninja``
the optimizer falls back to its PyTorch implementations, and :func:`load_error`
says why, for the one warning users see. ``MMLION_NO_JIT=1`` skips the build.

The kernels take plain strided CPU tensors only (no tensor subclasses such as
DTensor, no meta or sparse tensors, no other devices). They check that themselves, in
C++, and hand anything else back untouched, so the caller can take another path;
:func:`kernel_takes` is the same rule in Python, to name what was refused.
"""
import os
import os.path as osp
import sys
import warnings
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

_module = None
_error: Optional[str] = None
_loaded = False
_warned = False
# Plain tensors, as torch.optim.optimizer's _foreach_supported_types lists them: no
# subclasses (DTensor, FakeTensor, ...), whose data the kernels cannot address.
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)
# -ffp-contract=off: no fused multiply-adds, so the AVX-512, AVX2 and baseline clones
# of the kernel (and every machine) give the same bits. setup.py uses the same flags.
COMPILE_FLAGS = ['-O3', '-g0', '-fopenmp', '-ffp-contract=off']
_SOURCE = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc', 'lion_cpu.cpp')


def cache_dir() -> str:
    """Where kernels compiled at first use are kept: one folder per torch and Python."""
    root = (os.environ.get('MMLION_EXT_CACHE')
            or osp.join(osp.expanduser('~'), '.cache', 'mmlion'))
    tag = f'torch-{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}'
    return osp.join(root, tag.replace('+', '_'))


def _build_at_first_use():
    from torch.utils import cpp_extension
    folder = cache_dir()
    os.makedirs(folder, exist_ok=True)
    if not osp.exists(osp.join(folder, 'mmlion_C.so')):
        print(f'mmlion: compiling the fused CPU kernel for torch {torch.__version__} (once, '
              f'about 30 s; cached in {folder})', file=sys.stderr, flush=True)
    return cpp_extension.load(name='mmlion_C', sources=[_SOURCE], build_directory=folder,
                              extra_cflags=COMPILE_FLAGS,
                              extra_ldflags=['-fopenmp'], verbose=False)


def _load() -> None:
    global _module, _error, _loaded
    _loaded = True
    try:
        from mmlion import _C
        _module = _C
        return
    except ImportError as e:
        _error = f'mmlion._C is not installed ({e})'
    if os.environ.get('MMLION_NO_JIT') == '1':
        _error += '; MMLION_NO_JIT=1 skips compiling it at first use'
        return
    try:
        _module = _build_at_first_use()
        _error = None
    except Exception as e:  # no compiler, no ninja, a failed build: fall back, say why
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
        _error += (f', and compiling it at first use failed ({type(e).__name__}: '
                   f'{first_line}); install a C++ compiler and ninja, or run `pip install '
                   f'--no-build-isolation .`')


def _get(name: str) -> Optional[Callable]:
    if not _loaded:
        _load()
    return getattr(_module, name, None)


def fused_lion_kernel() -> Optional[Callable]:
    """The compiled ``fused_lion_`` function, or None if it is not available."""
    return _get('fused_lion_')


def all_finite_kernel() -> Optional[Callable]:
    """The compiled ``all_finite`` function, or None if it is not available."""
    return _get('all_finite')


def load_error() -> Optional[str]:
    if not _loaded:
        _load()
    return _error


def kernel_takes(tensors: Sequence[Tensor]) -> bool:
    """True when the compiled kernels accept every tensor: plain strided CPU tensors."""
    return all(type(t) in _PLAIN_TYPES and t.device.type == 'cpu' and t.layout == torch.strided
               for t in tensors)


def describe_untaken(tensors: Sequence[Tensor]) -> str:
    """What in ``tensors`` the kernels do not take, for an error message."""
    kinds = sorted({f'{type(t).__name__} on {t.device} ({t.layout})' for t in tensors
                    if not kernel_takes([t])})
    return ', '.join(kinds)


def warn_unbuilt_once() -> None:
    """One warning, at the first CPU step without the kernel."""
    global _warned
    if not _warned and fused_lion_kernel() is None:
        _warned = True
        warnings.warn(f'mmlion: fused Lion kernel not available ({load_error()}); using the '
                      f'for-loop implementation, several times slower on the CPU.')
