"""Skip optimizer steps whose gradients hold a NaN or an Inf, the same way on every rank.

``sign(NaN)`` is NaN on CUDA and 0 on CPU: either way one bad batch writes NaN
into Lion's momentum (``m = b2*m + (1-b2)*g``) and, on CUDA, into the weights,
for good. :class:`NonFiniteGuard` decides, before a step, whether to take it:

1. each rank finds whether its gradients (its shard of them, under ZeRO or FSDP)
   hold a non-finite element: :func:`found_nonfinite`, one read of the gradients
   (the compiled kernel on the CPU, an inf-norm per tensor elsewhere), or, where
   gradient clipping already computed the total norm, that norm alone;
2. under ``torch.distributed`` the ranks agree with one all-reduce of that flag
   (:func:`agree_across_ranks`), so replicas never part ways;
3. the guard counts the skip, logs it, and raises ``FloatingPointError`` after
   ``max_consecutive_skips`` skips in a row.

Everything reaches it through one door, :meth:`NonFiniteGuard.decide`, which decides
and counts (the caller then takes the step or not); its counts enter and leave a state
dict through :meth:`NonFiniteGuard.save_into` and :meth:`NonFiniteGuard.load_from` only.

One switch per audience turns it on: ``mmlion.GuardedOptimWrapper`` (and
``GuardedAmpOptimWrapper``) in MMEngine configs (any optimizer), ``Lion(skip_nonfinite=
True)`` in plain PyTorch; each owns a guard and keeps its counts under one key of its
state dict, :data:`STATE_KEY`. Where the step runs the fused GPU kernel, the guard hands
its verdict to the kernel as a flag on the device instead of deciding on the host,
whichever switch turned it on.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from mmengine.logging import print_log
from torch import Tensor

from mmlion.ops import lion_cpu
from mmlion.ops.common import refuse_graph_capture

__all__ = ['STATE_KEY', 'NonFiniteGuard', 'found_nonfinite', 'agree_across_ranks', 'any_rank',
           'all_finite', 'local_tensor']

STATE_KEY = 'nonfinite'  # where the guard's counts live in an optimizer's state dict


def local_tensor(t: Tensor) -> Tensor:
    """This rank's part of ``t``: the local shard of a DTensor, else ``t`` itself."""
    to_local = getattr(t, 'to_local', None)
    return to_local() if to_local is not None else t


def found_nonfinite(tensors: Sequence[Tensor]) -> Tensor:
    """A one-element bool tensor: does any element of this rank's ``tensors`` hold a
    NaN, +Inf or -Inf? It stays on the tensors' device (no host sync)."""
    if not tensors:
        return torch.zeros((), dtype=torch.bool)
    finite = lion_cpu.all_finite(tensors)  # None: not built, or handed back
    if finite is None and lion_cpu.available() and any(hasattr(t, 'to_local') for t in tensors):
        tensors = [local_tensor(t) for t in tensors]  # DTensors: check this rank's shards
        finite = lion_cpu.all_finite(tensors)
    if finite is not None:
        return torch.tensor(not finite)
    tensors = [local_tensor(t) for t in tensors]
    groups: Dict[tuple, List[Tensor]] = {}
    for t in tensors:
        if t.is_floating_point() or t.is_complex():
            groups.setdefault((t.device, t.dtype), []).append(t)
    flags = [torch.stack(torch._foreach_norm(ts, float('inf'))).isfinite().all().logical_not()
             for ts in groups.values()]
    if not flags:
        return torch.zeros((), dtype=torch.bool)
    device = flags[0].device
    return torch.stack([f.to(device) for f in flags]).any()


def _found_locally(grads: Sequence[Tensor], norm: Optional[Tensor]) -> Tensor:
    """This rank's flag: from the total norm where clipping computed it (non-finite
    exactly when some gradient is), else from one read of the gradients."""
    return ~torch.isfinite(norm.detach()).all() if norm is not None else found_nonfinite(grads)


def all_finite(tensors: Sequence[Tensor]) -> bool:
    """True when no element of any tensor (on this rank) is NaN, +Inf or -Inf."""
    return not bool(found_nonfinite(tensors))


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def any_rank(found: Tensor) -> Tensor:
    """``found`` OR-ed over the ranks, as an int32 flag on the device (one all-reduce
    of one element under ``torch.distributed``; every rank must call it; no host
    sync)."""
    flag = found.detach().reshape(()).to(torch.int32)
    if _distributed():
        if dist.get_backend() == 'nccl' and flag.device.type != 'cuda':
            flag = flag.to(torch.device('cuda', torch.cuda.current_device()))
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag


def agree_across_ranks(found: Tensor) -> bool:
    """True when ``found`` is set on any rank (a host sync off the CPU)."""
    return bool(any_rank(found))


class _HostCopy:
    """A copy of a small device tensor on its way to the host, read only once it has
    arrived: no sync (pinned memory and an event on CUDA; at once elsewhere)."""

    def __init__(self, values: Tensor):
        refuse_graph_capture(values.device, "mmlion's non-finite guard")
        if values.device.type == 'cuda':
            self.host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self.host.copy_(values, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.host, self.event = values.clone(), None

    def ready(self) -> bool:
        return self.event is None or self.event.query()

    def tolist(self) -> list:
        return self.host.tolist()


class NonFiniteGuard:
    """Counts the steps skipped for non-finite gradients; logs them, and stops training
    after too many in a row.

    Args:
        owner (str): Who skips, for the messages. Defaults to 'mmlion'.
    """

    def __init__(self, owner: str = 'mmlion'):
        self.owner = owner
        self.skipped = 0        # steps skipped in total
        self.consecutive = 0    # steps skipped since the last good one
        # On the device (_skip_flag_on_device): skipped, consecutive, longest run.
        self._device_counts: Optional[Tensor] = None
        self._in_flight: Optional[_HostCopy] = None

    def decide(self, grads: Sequence[Tensor], max_consecutive: Optional[int] = 10, *,
               on_device: bool = False, overflow: Optional[Tensor] = None,
               norm: Optional[Tensor] = None,
               describe: Optional[Callable[[int], str]] = None) -> Tuple[bool, Optional[Tensor]]:
        """The guard's one door: decide, on every rank alike, whether the step over
        ``grads`` may be taken, and count the verdict. Returns ``(take, skip_if)``:

        * ``on_device`` (the step runs the fused GPU kernel, which reads a skip flag on
          the device): ``(True, flag)``; take the step with ``skip_if=flag``, and it
          writes nothing where the flag is set. No host sync: the counts stay on the
          device and reach the host a step or two later.
        * otherwise the host decides: ``(True, None)`` when no gradient is NaN or Inf on
          any rank, ``(False, None)``, counted and logged, when one is.

        ``overflow``: a GradScaler's ``found_inf`` for this step, which skips the step
        too but is not counted (an overflow is the scaler's to handle). ``norm``: the
        total gradient norm, where clipping computed it; non-finite exactly when some
        gradient is, so the gradients need not be read again. ``describe(i)`` names
        ``grads[i]`` in the log when it is the bad one.
        """
        if on_device and grads:
            return True, self._skip_flag_on_device(grads, max_consecutive, overflow, norm)
        if overflow is not None and bool(overflow):
            return False, None
        self.flush()
        local = _found_locally(grads, norm)
        if not agree_across_ranks(local):
            self.consecutive = 0
            return True, None
        self._record_skip(max_consecutive, self._where(grads, describe))
        return False, None

    @staticmethod
    def _where(grads: Sequence[Tensor], describe: Optional[Callable[[int], str]]) -> str:
        if describe is None:
            return ''
        first = next((i for i, g in enumerate(grads) if not all_finite([g])), None)
        return f' (first in {describe(first)})' if first is not None else ' (on another rank)'

    def _record_skip(self, max_consecutive: Optional[int], where: str) -> None:
        """Count and log a skipped step; raise after ``max_consecutive`` in a row."""
        self.skipped += 1
        self.consecutive += 1
        print_log(
            f'{self.owner}: non-finite gradient (NaN or Inf){where}; skipped this step, '
            f'parameters and optimizer state unchanged ({self.consecutive} in a row, '
            f'{self.skipped} in total)',
            logger='current', level=30)
        if max_consecutive is not None and self.consecutive >= max_consecutive:
            raise FloatingPointError(
                f'{self.owner}: {self.consecutive} steps in a row had non-finite gradients '
                f'(max_consecutive_skips={max_consecutive}); stopping. Parameters and '
                f'optimizer state are those from before the first of these steps{where}. '
                f'Lower the learning rate, add gradient clipping or check the data.')

    # -- the guard without a host sync (the fused GPU step) ---------------------------
    def _skip_flag_on_device(self, grads: Sequence[Tensor], max_consecutive: Optional[int],
                             found_inf: Optional[Tensor], norm: Optional[Tensor]) -> Tensor:
        """The guard's verdict as a flag on the device, for a kernel that skips on it,
        with no host sync: the ranks agree by an all-reduce, the counts stay on the
        device, and a copy of them reaches the host without waiting. The log line and
        ``max_consecutive`` are applied from that copy when it has arrived (a step or
        two later on a GPU, at once on the CPU). A GradScaler's ``found_inf`` skips the
        step too, but is not counted."""
        local = _found_locally(grads, norm)
        found = any_rank(local)
        skip = found
        if found_inf is not None:
            overflow = found_inf.detach().reshape(()).to(found.device) != 0
            found = found.bool() & ~overflow
            skip = found | overflow
        self._count_on_device(found)
        self._poll(max_consecutive)
        return skip

    def _count_on_device(self, found: Tensor) -> None:
        if self._device_counts is None or self._device_counts.device != found.device:
            self.flush()
            self._device_counts = torch.zeros(3, dtype=torch.int64, device=found.device)
            for count, value in zip(self._device_counts, (self.skipped, self.consecutive,
                                                          self.consecutive)):
                count.fill_(value)  # a scalar fill: no copy, no sync
        skipped, consecutive, longest = self._device_counts.unbind()
        step = found.to(torch.int64)
        skipped.add_(step)
        consecutive.add_(step).mul_(step)
        torch.maximum(longest, consecutive, out=longest)

    def _poll(self, max_consecutive: Optional[int]) -> None:
        if self._in_flight is None:
            self._in_flight = _HostCopy(self._device_counts)
        if self._in_flight.ready():
            counts, self._in_flight = self._in_flight.tolist(), None
            self._apply(counts, max_consecutive)

    def _apply(self, counts: list, max_consecutive: Optional[int]) -> None:
        """Log the skips a copy of the device counts shows, and raise when it shows a
        run of ``max_consecutive`` of them."""
        skipped, consecutive, longest = counts
        if skipped > self.skipped:
            print_log(f'{self.owner}: {skipped - self.skipped} step(s) skipped for non-finite '
                      f'gradients (NaN or Inf), parameters and optimizer state unchanged by '
                      f'them ({consecutive} in a row now, {skipped} in total)',
                      logger='current', level=30)
        self.skipped, self.consecutive = skipped, consecutive
        if max_consecutive is not None and longest >= max_consecutive:
            raise FloatingPointError(
                f'{self.owner}: {longest} steps in a row had non-finite gradients '
                f'(max_consecutive_skips={max_consecutive}); stopping. Those steps changed '
                f'nothing; the guard counts on the device and can see this a step or two late. '
                f'Lower the learning rate, add gradient clipping or check the data.')

    def flush(self) -> None:
        """Bring the device counts to the host (a sync; for saving, not per step)."""
        if self._device_counts is not None:
            self._in_flight = None
            counts = self._device_counts.tolist()
            self._device_counts = None
            self._apply(counts, None)

    # -- the counts in an optimizer's state dict --------------------------------------
    def state_dict(self) -> dict:
        self.flush()
        return dict(skipped=self.skipped, consecutive=self.consecutive)

    def load_state_dict(self, state: dict) -> None:
        self._device_counts = self._in_flight = None
        self.skipped = int(state.get('skipped', 0))
        self.consecutive = int(state.get('consecutive', 0))

    def save_into(self, state_dict: dict) -> dict:
        """``state_dict`` with the counts added under :data:`STATE_KEY`."""
        state_dict[STATE_KEY] = self.state_dict()
        return state_dict

    def load_from(self, state_dict: dict) -> dict:
        """Load the counts (if any); return ``state_dict`` without them, for torch."""
        state_dict = dict(state_dict)
        counts = state_dict.pop(STATE_KEY, None)
        if counts is not None:
            self.load_state_dict(counts)
        return state_dict

    def __repr__(self) -> str:
        return f'NonFiniteGuard(skipped={self.skipped}, consecutive={self.consecutive})'
