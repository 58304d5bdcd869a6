"""Which implementation steps a list of tensors: the one place mmlion decides it.

:func:`mmlion.optim.lion.lion` asks once per call, as torch's ``adam()`` resolves
``fused`` and ``foreach`` once, and everything that must agree with its answer asks
the same question: :class:`~mmlion.optim.Lion` to know whether the step skips on a
flag on the device (the non-finite guard's verdict, no host sync) and whether a
GradScaler may hand it the unscaling (``_step_supports_amp_scaling``).

* ``fused=True``: the fused implementation; the device picks the kernel (the Triton
  kernel on CUDA, the C++ kernel on the CPU).
* ``foreach=True``: ``torch._foreach_*``; ``foreach=False``: the for-loop.
* Neither set: the C++ kernel on the CPU where it is built (and, should it refuse the
  tensors, torch's default after all), else torch's default (foreach on CUDA, the
  for-loop elsewhere). On CUDA the Triton kernel stays opt-in until it has been
  measured on a GPU.
"""
from typing import NamedTuple, Sequence

import torch
from torch import Tensor
from torch.optim.optimizer import _default_to_fused_or_foreach

from mmlion.ops import lion_cpu, lion_triton

__all__ = ['Implementation', 'resolve', 'torch_default']


class Implementation(NamedTuple):
    name: str          # 'fused', 'foreach' or 'for-loop'
    automatic: bool    # chosen for the user, who set neither fused nor foreach
    on_device: bool    # the Triton kernel: reads lr, the GradScaler's flags and the
    #                    guard's verdict on the device


FOREACH = Implementation('foreach', False, False)
FOR_LOOP = Implementation('for-loop', False, False)


def resolve(device: torch.device, foreach, fused, params: Sequence[Tensor] = ()) -> Implementation:
    """The implementation for tensors on ``device`` with these flags (``params``: the
    tensors, for torch's default where neither flag is set)."""
    if fused:
        return Implementation('fused', False, lion_triton.runs_on(device))
    if foreach:
        return FOREACH
    if foreach is None and fused is None:
        if device.type == 'cpu':
            if lion_cpu.available():
                return Implementation('fused', True, False)
            lion_cpu.warn_unbuilt_once()
        return torch_default(params)
    return FOR_LOOP


def torch_default(params: Sequence[Tensor]) -> Implementation:
    """torch's own choice for these tensors: foreach where its kernels run (CUDA), the
    for-loop elsewhere."""
    _, foreach = _default_to_fused_or_foreach(list(params), differentiable=False,
                                              use_fused=False)
    return Implementation('foreach' if foreach else 'for-loop', True, False)
