"""ZeRO stage 1 for any registry optimizer, on ``torch.distributed``.

MMEngine 0.10.7's ``ZeroRedundancyOptimizer`` finds its inner optimizer with
``getattr(torch.optim, optimizer_type)``, so it cannot shard Lion (or anything
else from a registry), and it deadlocks at the first checkpoint: its ``state_dict()``
gathers the shards, a collective, which MMEngine's ``Runner.save_checkpoint`` calls on
rank 0 alone. This one builds the inner optimizer from MMEngine's ``OPTIMIZERS``
registry, and leaves the gathering to :class:`~mmlion.engine.ShardedOptimizerHook`,
which calls ``consolidate_state_dict`` on every rank before the checkpoint hook saves
(``mmlion.ResumableCheckpointHook`` adds it).

Each rank keeps the optimizer state of its shard only: for Lion, 4 bytes per
parameter divided by the number of ranks. Lion's update is elementwise, so the
parameters equal plain DDP + Lion bit for bit.

To skip steps with non-finite gradients, wrap it as any optimizer is wrapped:
``optim_wrapper=dict(type='mmlion.GuardedOptimWrapper', optimizer=dict(
type='mmlion.ZeroRedundancyOptimizer', ...))``. Its own ``skip_nonfinite``, deprecated
in 0.4, is now refused with that advice; a checkpoint saved with it resumes under the
wrapper, which takes over its counts.
"""
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
        skip_nonfinite (bool, optional): Removed; True raises, naming
            ``mmlion.GuardedOptimWrapper``, which guards any optimizer.
        max_consecutive_skips (int, optional): Removed with it.
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
        if skip_nonfinite or max_consecutive_skips is not None:
            raise ValueError(
                f'Invalid skip_nonfinite: mmlion.ZeroRedundancyOptimizer(skip_nonfinite='
                f'{skip_nonfinite!r}, max_consecutive_skips={max_consecutive_skips!r}) was '
                f"deprecated and is removed; wrap it in optim_wrapper=dict(type="
                f"'mmlion.GuardedOptimWrapper', max_consecutive_skips=..., optimizer=...), "
                f'the same guard for every optimizer (old checkpoints resume under it)')
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

    def state_dict(self) -> dict:
        """The whole optimizer state, on the rank it was consolidated to. Raises,
        instead of returning stale state, when a step came after the last
        consolidation."""
        if self._consolidated_at != self._steps:
            raise RuntimeError(
                'ZeroRedundancyOptimizer.state_dict(): the optimizer state is sharded and '
                f'was last gathered at step {self._consolidated_at} (now {self._steps}); '
                'call consolidate_state_dict(to=0) on every rank first. In an MMEngine '
                "config, custom_hooks=[dict(type='mmlion.ShardedOptimizerHook')] does so "
                'before every checkpoint (mmlion.ResumableCheckpointHook adds it)')
        return super().state_dict()

    def load_state_dict(self, state_dict) -> None:
        """torch's, without the guard counts of a checkpoint saved with the removed
        ``skip_nonfinite`` (a guarded wrapper takes them before this is called)."""
        super().load_state_dict({k: v for k, v in state_dict.items() if k != STATE_KEY})
