"""ZeRO stage 1 for any registry optimizer, on ``torch.distributed``.

MMEngine 0.10.7's ``ZeroRedundancyOptimizer`` finds its inner optimizer with
``getattr(torch.optim, optimizer_type)``, so it cannot shard Lion (or anything
else from a registry), and it deadlocks at the first checkpoint: only rank 0
calls ``state_dict()``, which runs a collective. This one builds the inner
optimizer from MMEngine's ``OPTIMIZERS`` registry, and leaves the collective to
:class:`~mmlion.engine.ResumableCheckpointHook`, which calls
``consolidate_state_dict`` on every rank before rank 0 saves.

Each rank keeps the optimizer state of its shard only: for Lion, 4 bytes per
parameter divided by the number of ranks. Lion's update is elementwise, so the
parameters equal plain DDP + Lion bit for bit.

To skip steps with non-finite gradients, wrap it as any optimizer is wrapped:
``optim_wrapper=dict(type='mmlion.GuardedOptimWrapper', optimizer=dict(
type='mmlion.ZeroRedundancyOptimizer', ...))``. Its own ``skip_nonfinite`` is deprecated:
it is handed to the inner optimizer (Lion guards its shard, the ranks agree), whose
counts this optimizer's state dict carries.
"""
import inspect
import warnings
from typing import Optional

import torch.distributed as dist
from torch.distributed.optim import ZeroRedundancyOptimizer as TorchZero

from mmlion.registry import OPTIMIZERS, find_optimizer, unknown_optimizer
from .nonfinite import STATE_KEY

__all__ = ['ZeroRedundancyOptimizer']


@OPTIMIZERS.register_module()
class ZeroRedundancyOptimizer(TorchZero):
    """``torch.distributed.optim.ZeroRedundancyOptimizer`` that takes a registry name.

    Args:
        params: Parameters or param group dicts (``paramwise_cfg`` works).
        optimizer_type (str | type): A name in MMEngine's ``OPTIMIZERS``
            registry (``'Lion'``, ``'AdamW'``, ``'mmlion.Lion'``) or a class.
            Defaults to ``'Lion'``.
        skip_nonfinite (bool, optional): Deprecated; use ``mmlion.GuardedOptimWrapper``.
            True hands ``skip_nonfinite`` and ``max_consecutive_skips`` to the inner
            optimizer, which must take them (Lion does).
        max_consecutive_skips (int, optional): See :class:`~mmlion.optim.Lion`.
        **kwargs: ``process_group``, ``parameters_as_bucket_view`` and the inner
            optimizer's own arguments (``lr``, ``weight_decay``, ...).

    Example:
        >>> optim_wrapper = dict(optimizer=dict(
        ...     type='mmlion.ZeroRedundancyOptimizer', optimizer_type='Lion',
        ...     lr=1e-4, weight_decay=1.0))
    """

    def __init__(self, params, optimizer_type='Lion', *, skip_nonfinite: Optional[bool] = None,
                 max_consecutive_skips: Optional[int] = None, **kwargs):
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                'ZeroRedundancyOptimizer shards the optimizer state across the processes of '
                'torch.distributed, which is not initialised here; launch with torchrun '
                '(tools/dist_train.sh) or use the optimizer without ZeRO.')
        optimizer_class = find_optimizer(optimizer_type)
        if optimizer_class is None:
            raise ValueError(f'Invalid optimizer_type: '
                             f'{unknown_optimizer("optimizer_type", optimizer_type)}')
        if skip_nonfinite:
            kwargs = _hand_guard_to_inner(optimizer_class, max_consecutive_skips, kwargs)
        self._steps = 0
        self._consolidated_at: Optional[int] = None
        super().__init__(params, optimizer_class, **kwargs)
        # torch shares one dict between ``defaults`` and what it passes to the inner
        # optimizer; the wrapper's own option joins ``defaults`` only, so that
        # ``type(opt)(params, **opt.defaults)``, deepcopy and pickles keep it.
        self._optim_defaults = dict(self._optim_defaults)
        self.defaults.update(optimizer_type=optimizer_type)

    def step(self, closure=None, **kwargs):
        self._steps += 1
        return super().step(closure=closure, **kwargs)

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gather the shards on rank ``to``; every rank must call it."""
        super().consolidate_state_dict(to)
        self._consolidated_at = self._steps

    def state_dict(self):
        """The whole optimizer state, on the rank it was consolidated to. Raises,
        instead of returning stale state, when a step came after the last
        consolidation."""
        if self._consolidated_at != self._steps:
            raise RuntimeError(
                'ZeroRedundancyOptimizer.state_dict(): the optimizer state is sharded and '
                f'was last consolidated at step {self._consolidated_at} (now {self._steps}); '
                'call consolidate_state_dict(to=0) on all ranks first (mmlion\'s '
                'ResumableCheckpointHook does so before every checkpoint)')
        state_dict = super().state_dict()  # torch's: the inner state and groups only
        if self.optim.defaults.get('skip_nonfinite'):  # the inner guard's counts, alike
            self.optim.nonfinite_guard.save_into(state_dict)  # on every rank
        return state_dict

    def load_state_dict(self, state_dict) -> None:
        guard = getattr(self.optim, 'nonfinite_guard', None)
        if guard is not None:  # the inner guard takes its counts, if the dict has any
            state_dict = guard.load_from(state_dict)
        else:
            state_dict = {k: v for k, v in state_dict.items() if k != STATE_KEY}
        super().load_state_dict(state_dict)


def _hand_guard_to_inner(optimizer_class, max_consecutive_skips, kwargs: dict) -> dict:
    """The deprecated ``skip_nonfinite=True``, as the inner optimizer's own option."""
    warnings.warn(
        'mmlion.ZeroRedundancyOptimizer(skip_nonfinite=True) is deprecated: wrap it in '
        "optim_wrapper=dict(type='mmlion.GuardedOptimWrapper', ...) instead (the same "
        'guard, for every optimizer). It is handed to the inner optimizer for now.',
        FutureWarning, stacklevel=3)
    if 'skip_nonfinite' not in inspect.signature(optimizer_class).parameters:
        raise ValueError(
            f'Invalid skip_nonfinite: skip_nonfinite=True (deprecated) is handed to '
            f'optimizer_type={optimizer_class.__name__}, which has no such option; use '
            f"optim_wrapper=dict(type='mmlion.GuardedOptimWrapper', ...) instead")
    kwargs = dict(kwargs, skip_nonfinite=True)
    if max_consecutive_skips is not None:
        kwargs['max_consecutive_skips'] = max_consecutive_skips
    return kwargs
