"""The one loader of mmlion's kernels: each library is loaded at its first use, once,
and when it cannot be, :meth:`Library.load_error` says why (for the one warning or
error a user sees).

* :data:`CPU`: the compiled C++ code, ``mmlion.ops._C``: the CPU kernels, and the
  checks by which every step, on any device, reuses its plan (``layout_key``,
  ``PlanCheck``; without them there is no plan, and each step gathers its tensors
  afresh: slower, the same result). ``pip install
  --no-build-isolation`` (as ``tools/install.sh`` runs it) builds them with the package.
  A plain ``pip install -e .`` or ``pip install <sdist>`` builds in an isolated
  environment without torch and so installs without them; then they are compiled here
  at first use against the running torch (about 30 s, once: cached per torch and Python
  version under ``~/.cache/mmlion``, or ``$MMLION_EXT_CACHE``), with one line saying so.
  ``MMLION_NO_JIT=1`` skips that build.
* :data:`TRITON`: the Triton kernels (:mod:`.lion_triton_kernels`), which need
  Triton >= 3.0; Triton is imported at the first fused GPU step, not with mmlion.
"""
import os
import os.path as osp
import sys
from typing import Callable, Optional

import torch

from mmlion.utils import versions
from . import build

__all__ = ['Library', 'CPU', 'TRITON', 'cache_dir']


class Unavailable(Exception):
    """A library cannot be loaded; the message says why and what to do."""


class Library:
    """A kernel library, loaded by ``load`` at the first :meth:`get`."""

    def __init__(self, load: Callable[[], object]):
        self._load = load
        self._loaded = False
        self.module = None
        self.error: Optional[str] = None

    def get(self):
        """The loaded module, or None when it cannot be loaded."""
        if not self._loaded:
            self._loaded = True
            try:
                self.module = self._load()
            except Unavailable as error:
                self.error = str(error)
        return self.module

    def load_error(self) -> str:
        self.get()
        return self.error or ''


def cache_dir() -> str:
    """Where kernels compiled at first use are kept: one folder per torch and Python."""
    root = (os.environ.get('MMLION_EXT_CACHE')
            or osp.join(osp.expanduser('~'), '.cache', 'mmlion'))
    tag = f'torch-{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}'
    return osp.join(root, tag.replace('+', '_'))


def _compile_at_first_use():
    from torch.utils import cpp_extension
    folder = cache_dir()
    os.makedirs(folder, exist_ok=True)
    if not osp.exists(osp.join(folder, 'mmlion_C.so')):
        print(f'mmlion: compiling its C++ kernels for torch {torch.__version__} (once, '
              f'about 30 s; cached in {folder})', file=sys.stderr, flush=True)
    return cpp_extension.load(name='mmlion_C', sources=build.source_paths(),
                              build_directory=folder, extra_cflags=build.COMPILE_FLAGS,
                              extra_ldflags=build.LINK_FLAGS, verbose=False)


def _load_cpu():
    try:
        from mmlion.ops import _C
        return _C
    except ImportError as e:
        error = f'{build.EXTENSION} is not installed ({e})'
    if os.environ.get('MMLION_NO_JIT') == '1':
        raise Unavailable(f'{error}; MMLION_NO_JIT=1 skips compiling it at first use')
    try:
        return _compile_at_first_use()
    except Exception as e:  # no compiler, no ninja, a failed build: fall back, say why
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
        raise Unavailable(
            f'{error}, and compiling it at first use failed ({type(e).__name__}: '
            f'{first_line}); install a C++ compiler and ninja, or run `pip install '
            f'--no-build-isolation .`') from None


def _load_triton():
    too_old = versions.unsupported('fused=True on CUDA (the Triton kernel)', 'triton',
                                   versions.triton_version(), versions.SUPPORTED['triton'])
    if too_old is not None:
        raise Unavailable(too_old)
    try:
        from mmlion.ops import lion_triton_kernels
    except Exception as error:  # triton absent or broken: say why at fused=True
        raise Unavailable(f'{type(error).__name__}: {error}') from None
    return lion_triton_kernels


CPU = Library(_load_cpu)
TRITON = Library(_load_triton)
