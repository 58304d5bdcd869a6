"""The fused Lion step and the finiteness check on the CPU: the C++ kernels of
``csrc/lion_cpu.cpp``, loaded by :data:`mmlion.ops.loader.CPU`.

The kernels take plain strided CPU tensors only (no tensor subclasses such as DTensor,
no meta or sparse tensors, no other devices). They check that themselves, in C++, and
hand anything else back untouched; :func:`takes` is the same rule in Python, which
:mod:`mmlion.optim.implementation` asks before it chooses them.
"""
import warnings
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from .common import PLAIN_TYPES, decay_factor
from .loader import CPU

__all__ = ['available', 'load_error', 'takes', 'describe_untaken', 'fused_lion_',
           'all_finite', 'warn_unbuilt_once']

_warned = False


def available() -> bool:
    """True when the compiled kernels are (or could be made) loaded."""
    return CPU.get() is not None


def load_error() -> str:
    return CPU.load_error()


def takes(tensors: Sequence[Tensor]) -> bool:
    """True when the kernels accept every tensor: plain strided CPU tensors without a
    conjugate or negative bit."""
    return all(type(t) in PLAIN_TYPES and t.device.type == 'cpu' and t.layout == torch.strided
               and not (t.is_conj() or t.is_neg()) for t in tensors)


def describe_untaken(tensors: Sequence[Tensor]) -> str:
    """What in ``tensors`` the kernels do not take, for an error message."""
    def describe(t: Tensor) -> str:
        bits = ', conjugate bit' * t.is_conj() + ', negative bit' * t.is_neg()
        return f'{type(t).__name__} on {t.device} ({t.layout}{bits})'
    return ', '.join(sorted({describe(t) for t in tensors if not takes([t])}))


def fused_lion_(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *, lr,
                beta1: float, beta2: float, weight_decay: float, initial_lr, maximize: bool,
                cautious: bool) -> None:
    """One kernel call for the whole list, in place; it handles mixed dtypes, complex
    and non-contiguous tensors itself. The caller chose it for tensors it
    :func:`takes`; should the kernel be missing or refuse them after all, this raises,
    having touched nothing."""
    module = CPU.get()
    if module is None:
        raise RuntimeError(f'mmlion: the C++ Lion kernel is not available: {load_error()}')
    lr_value = float(lr)
    decay = float(decay_factor(lr_value, weight_decay,
                               None if initial_lr is None else float(initial_lr)))
    if not module.fused_lion_(params, grads, exp_avgs, lr_value, beta1, beta2, decay,
                              maximize, cautious):
        raise RuntimeError(f'mmlion: the C++ Lion kernel refuses '
                           f'{describe_untaken([*params, *grads, *exp_avgs]) or "these tensors"}'
                           f', which it was chosen for; please report this, and use '
                           f'foreach=True meanwhile')


def all_finite(tensors: Sequence[Tensor]) -> Optional[bool]:
    """True when no element of ``tensors`` is NaN or Inf, in one read; None when the
    kernel is not built or does not take the tensors (the caller checks another way)."""
    module = CPU.get()
    return None if module is None else module.all_finite(tensors)


def warn_unbuilt_once() -> None:
    """One warning, at the first CPU step without the kernel."""
    global _warned
    if not _warned and not available():
        _warned = True
        warnings.warn(f'mmlion: fused Lion kernel not available ({load_error()}); using the '
                      f'for-loop implementation, several times slower on the CPU.')
