"""The gradient of an unfinished accumulation window: saved with a checkpoint that
falls inside one (``accumulative_counts`` that does not divide the epoch), restored
into ``p.grad`` on resume."""
from typing import Dict, Optional

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

__all__ = ['optim_wrappers', 'mid_window', 'collect', 'restore']


def optim_wrappers(runner) -> list:
    wrapper = runner.optim_wrapper
    if isinstance(wrapper, OptimWrapperDict):
        return list(wrapper.values())
    return [wrapper] if isinstance(wrapper, OptimWrapper) else []


def mid_window(wrapper: OptimWrapper) -> bool:
    """True when gradients of a partial accumulation window are in ``p.grad``."""
    counts = getattr(wrapper, '_accumulative_counts', 1)
    return counts > 1 and wrapper._inner_count % counts != 0


def _bare_model(runner):
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def collect(runner) -> Optional[Dict[str, torch.Tensor]]:
    """This rank's partial gradients (on the CPU), or None outside a window."""
    if not any(mid_window(w) for w in optim_wrappers(runner)):
        return None
    return {name: p.grad.detach().cpu().clone()
            for name, p in _bare_model(runner).named_parameters() if p.grad is not None}


def restore(runner, grads: Optional[Dict[str, torch.Tensor]]) -> int:
    """Put saved partial gradients back into ``p.grad``; how many tensors."""
    restored = 0
    for name, p in _bare_model(runner).named_parameters():
        if grads and name in grads:
            p.grad = grads[name].to(device=p.device, dtype=p.dtype)
            restored += 1
    return restored
