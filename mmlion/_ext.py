"""Loader of mmlion's compiled kernels (``mmlion._C``), built by ``setup.py``.

The optimizer falls back to its PyTorch implementations when the extension is
missing; :func:`load_error` says why it is, for the one-line message users see.
"""
from typing import Callable, Optional

_kernel: Optional[Callable] = None
_all_finite: Optional[Callable] = None
_error: Optional[str] = None
_loaded = False


def _load() -> None:
    global _kernel, _all_finite, _error, _loaded
    _loaded = True
    try:
        import torch  # noqa: F401  (the extension links against libtorch)

        from mmlion import _C
        _kernel = _C.fused_lion_
        _all_finite = _C.all_finite
    except (ImportError, AttributeError) as e:  # AttributeError: a stale build
        _error = f'mmlion._C could not be imported: {e}'


def fused_lion_kernel() -> Optional[Callable]:
    """The compiled ``fused_lion_`` function, or None if it is not built."""
    if not _loaded:
        _load()
    return _kernel


def all_finite_kernel() -> Optional[Callable]:
    """The compiled ``all_finite`` function, or None if it is not built."""
    if not _loaded:
        _load()
    return _all_finite


def load_error() -> Optional[str]:
    if not _loaded:
        _load()
    return _error
