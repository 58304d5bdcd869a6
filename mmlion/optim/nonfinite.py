"""Skip optimizer steps whose gradients hold a NaN or an Inf.

``sign(NaN)`` is NaN on CUDA and 0 on CPU: either way one bad batch writes NaN
into Lion's momentum (``m = b2*m + (1-b2)*g``) and, on CUDA, into the weights,
for good. :class:`NonFiniteGuard` checks every gradient before a step and, if
any element is not finite, has the caller skip the whole step: parameters and
optimizer state stay bitwise as they were. Skips are counted and logged, and
``max_consecutive`` skips in a row stop training with :class:`FloatingPointError`.

The check reads each gradient once (4 bytes per fp32 parameter against the 20
a Lion step moves): on the CPU with mmlion's compiled kernel, by exponent bits;
elsewhere with one inf-norm per tensor (NaN propagates through it) and one
device-to-host sync.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmlion import _ext

__all__ = ['all_finite', 'NonFiniteGuard', 'params_with_grads', 'save_guard_state',
           'load_guard_state']

STATE_KEY = 'nonfinite'  # where optimizers keep the guard's counts in their state dict


def all_finite(tensors: Sequence[Tensor]) -> bool:
    """True when no element of any tensor is NaN, +Inf or -Inf."""
    tensors = list(tensors)
    if not tensors:
        return True
    kernel = _ext.all_finite_kernel()
    if kernel is not None:
        result = kernel(tensors)
        if result is not None:
            return result
    groups: Dict[tuple, List[Tensor]] = {}
    for t in tensors:
        if t.is_floating_point() or t.is_complex():
            groups.setdefault((t.device, t.dtype), []).append(t)
    flags = [torch.stack(torch._foreach_norm(ts, float('inf'))).isfinite().all()
             for ts in groups.values()]
    if not flags:
        return True
    return bool(torch.stack([f.cpu() for f in flags]).all())


def params_with_grads(param_groups: Sequence[dict]) -> List[Tuple[int, Tensor]]:
    """(group index, parameter) for every parameter that has a gradient."""
    return [(index, p) for index, group in enumerate(param_groups)
            for p in group['params'] if p.grad is not None]


def save_guard_state(guard: Optional['NonFiniteGuard'], state_dict: dict) -> dict:
    """Add the guard's counts to an optimizer's state dict (if there is a guard)."""
    if guard is not None:
        state_dict[STATE_KEY] = guard.state_dict()
    return state_dict


def load_guard_state(guard: Optional['NonFiniteGuard'], state_dict: dict) -> dict:
    """Load the counts into the guard; return the state dict without them, for torch."""
    state_dict = dict(state_dict)
    counts = state_dict.pop(STATE_KEY, None)
    if counts is not None and guard is not None:
        guard.load_state_dict(counts)
    return state_dict


def _check_max_consecutive(value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'Invalid max_consecutive_skips: max_consecutive_skips={value!r} '
                         f'(must be an int >= 1, or None to never stop)')


class NonFiniteGuard:
    """Counts steps skipped for non-finite gradients; logs and stops.

    Args:
        max_consecutive (int, optional): Raise after this many skips in a row.
            None never raises. Defaults to 10.
        owner (str): Who skips, for the messages. Defaults to 'mmlion'.
    """

    def __init__(self, max_consecutive: Optional[int] = 10, owner: str = 'mmlion'):
        _check_max_consecutive(max_consecutive)
        self.max_consecutive = max_consecutive
        self.owner = owner
        self.skipped = 0        # steps skipped in total
        self.consecutive = 0    # steps skipped since the last good one

    def should_step(self, grads: Sequence[Tensor],
                    describe: Optional[Callable[[int], str]] = None) -> bool:
        """Check ``grads``; False (and count, log, maybe raise) if the step must
        be skipped. ``describe(i)`` names tensor ``i`` in the log message."""
        if all_finite(grads):
            self.consecutive = 0
            return True
        self.skipped += 1
        self.consecutive += 1
        where = ''
        if describe is not None:
            first = next(i for i, g in enumerate(grads) if not all_finite([g]))
            where = f' (first in {describe(first)})'
        print_log(
            f'{self.owner}: non-finite gradient (NaN or Inf){where}; skipped this step, '
            f'parameters and optimizer state unchanged ({self.consecutive} in a row, '
            f'{self.skipped} in total)',
            logger='current', level=30)
        if self.max_consecutive is not None and self.consecutive >= self.max_consecutive:
            raise FloatingPointError(
                f'{self.owner}: {self.consecutive} steps in a row had non-finite gradients '
                f'(max_consecutive_skips={self.max_consecutive}); stopping. Parameters and '
                f'optimizer state are those from before the first of these steps{where}. '
                f'Lower the learning rate, add gradient clipping or check the data.')
        return False

    def should_step_params(self, located: Sequence[Tuple[int, Tensor]],
                           name: Optional[Callable[[Tensor], str]] = None) -> bool:
        """:meth:`should_step` over the gradients of ``params_with_grads(...)``; the log
        names the first bad one by ``name(param)``, or by its group and shape."""
        def describe(i: int) -> str:
            index, p = located[i]
            return name(p) if name else f'param group {index}, parameter of shape {tuple(p.shape)}'

        return self.should_step([p.grad for _, p in located], describe)

    def state_dict(self) -> dict:
        return dict(skipped=self.skipped, consecutive=self.consecutive)

    def load_state_dict(self, state: dict) -> None:
        self.skipped = int(state.get('skipped', 0))
        self.consecutive = int(state.get('consecutive', 0))

    def __repr__(self) -> str:
        return (f'NonFiniteGuard(max_consecutive={self.max_consecutive}, '
                f'skipped={self.skipped}, consecutive={self.consecutive})')
