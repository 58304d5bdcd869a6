"""The Lion update in PyTorch: :func:`single_tensor_lion` (a for-loop, the reference)
and :func:`multi_tensor_lion` (``torch._foreach_*``), in the order of the paper: decay
the weight, step by the sign of an interpolation of momentum and gradient, update the
momentum. The kernels' launchers take the same lists and keywords:
:func:`mmlion.ops.lion_cpu.fused_lion_` (C++) and :func:`mmlion.ops.lion_triton.fused_lion_`
(Triton, which also takes the GradScaler's flags and reads them on the device). Which one
runs is decided in :mod:`.implementation`.
"""
from typing import Dict, List, Union

import torch
from torch import Tensor

from mmlion.ops.common import as_real, as_scalar, decay_factor

__all__ = ['single_tensor_lion', 'multi_tensor_lion']


def _opmath(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _apply_caution_(update: Tensor, grad: Tensor) -> None:
    """Zero the update where its sign disagrees with the gradient and rescale the
    rest by 1 / max(mean(mask), 1e-3), as timm does (the fused kernel does the same)."""
    mask = (update * grad > 0).to(update.dtype)
    mask.div_(mask.mean().clamp_(min=1e-3))
    update.mul_(mask)


def single_tensor_lion(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                       lr: Union[float, Tensor], beta1: float, beta2: float,
                       weight_decay: float, initial_lr, maximize: bool, cautious: bool) -> None:
    lr, initial_lr = as_scalar(lr), as_scalar(initial_lr)
    decay = decay_factor(lr, weight_decay, initial_lr)
    for param, grad, exp_avg in zip(params, grads, exp_avgs):
        if param.is_complex():
            param, grad, exp_avg = (torch.view_as_real(param), torch.view_as_real(grad),
                                    torch.view_as_real(exp_avg))
        if maximize:
            grad = -grad
        opmath = _opmath(param.dtype)
        # ``.to`` returns the tensor itself when it is already in op-math precision,
        # so the in-place updates below land directly in the parameter and state.
        p, g, m = param.to(opmath), grad.to(opmath), exp_avg.to(opmath)
        # stepweight decay
        p.mul_(decay)
        # weight update
        update = m.mul(beta1).add_(g, alpha=1 - beta1).sign_()
        if cautious:
            _apply_caution_(update, g)
        if isinstance(lr, Tensor):
            p.sub_(update.mul_(lr))
        else:
            p.add_(update, alpha=-lr)
        # decay the momentum running average coefficient
        m.mul_(beta2).add_(g, alpha=1 - beta2)
        if p is not param:
            param.copy_(p)
        if m is not exp_avg:
            exp_avg.copy_(m)


def multi_tensor_lion(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                      lr: Union[float, Tensor], beta1: float, beta2: float,
                      weight_decay: float, initial_lr, maximize: bool, cautious: bool) -> None:
    lr, initial_lr = as_scalar(lr), as_scalar(initial_lr)
    decay = decay_factor(lr, weight_decay, initial_lr)
    params, grads, exp_avgs = as_real(params, grads, exp_avgs)
    for dtype, (ps, gs, ms) in _group_by_device_and_dtypes(params, grads, exp_avgs):
        opmath = _opmath(dtype)
        if maximize:
            gs = torch._foreach_neg(gs)
        # Low-precision params and state (bf16 exp_avg) compute in op-math copies.
        p32 = ps if dtype == opmath else [t.to(opmath) for t in ps]
        g32 = gs if dtype == opmath else [t.to(opmath) for t in gs]
        m32 = [t.to(opmath) for t in ms]
        # stepweight decay
        if isinstance(decay, Tensor) or decay != 1:
            torch._foreach_mul_(p32, decay)
        # weight update
        updates = torch._foreach_mul(m32, beta1)
        torch._foreach_add_(updates, g32, alpha=1 - beta1)
        torch._foreach_sign_(updates)
        if cautious:
            for update, g in zip(updates, g32):
                _apply_caution_(update, g)
        if isinstance(lr, Tensor):
            torch._foreach_mul_(updates, lr)
            torch._foreach_sub_(p32, updates)
        else:
            torch._foreach_add_(p32, updates, alpha=-lr)
        # decay the momentum running average coefficient
        torch._foreach_mul_(m32, beta2)
        torch._foreach_add_(m32, g32, alpha=1 - beta2)
        if p32 is not ps:
            torch._foreach_copy_(ps, p32)
        for m, m_opmath in zip(ms, m32):
            if m_opmath is not m:
                m.copy_(m_opmath)


def _group_by_device_and_dtypes(params: List[Tensor], grads: List[Tensor],
                                exp_avgs: List[Tensor]) -> List[tuple]:
    """``(param dtype, (params, grads, exp_avgs))`` per device, param dtype and state
    dtype: each foreach call then sees one dtype per list. (torch's private
    ``_group_tensors_by_device_and_dtype`` refuses lists whose dtypes differ by index,
    as bf16 state beside fp32 params does, before torch 2.2.)"""
    groups: Dict[tuple, tuple] = {}
    for p, g, m in zip(params, grads, exp_avgs):
        key = (p.device, p.dtype, m.dtype)
        lists = groups.get(key)
        if lists is None:
            lists = groups[key] = ([], [], [])
        lists[0].append(p)
        lists[1].append(g)
        lists[2].append(m)
    return [(key[1], lists) for key, lists in groups.items()]
