"""Sharded optimizer state gathered before rank 0 saves it: optimizers with
``consolidate_state_dict`` (torch's and mmlion's ``ZeroRedundancyOptimizer``) run a
collective in it, which MMEngine 0.10's ``CheckpointHook`` calls on rank 0 alone, so
training deadlocked at the first checkpoint. Every rank calls this first."""
from .partial_gradients import optim_wrappers

__all__ = ['consolidate']


def consolidate(runner) -> None:
    """Gather each sharded optimizer's state on rank 0 (every rank must call it)."""
    for wrapper in optim_wrappers(runner):
        gather = getattr(wrapper.optimizer, 'consolidate_state_dict', None)
        if gather is not None:
            gather(to=0)
