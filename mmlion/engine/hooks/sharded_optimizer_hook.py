"""``ShardedOptimizerHook``: a ZeRO-sharded optimizer's state gathered on rank 0 before
each checkpoint, on every rank, so that rank 0 can save it."""
from mmlion.registry import HOOKS
from ..resume import partial_gradients
from ..resume.checkpoint_moments import BeforeEachCheckpoint

__all__ = ['ShardedOptimizerHook']


@HOOKS.register_module()
class ShardedOptimizerHook(BeforeEachCheckpoint):
    """Optimizers with ``consolidate_state_dict`` (mmlion's and torch's
    ``ZeroRedundancyOptimizer``) keep each rank's shard of the state; gathering it is a
    collective, which MMEngine's ``Runner.save_checkpoint`` (rank 0 alone) cannot run,
    so training deadlocked at the first checkpoint. This hook gathers it on every rank
    just before the checkpoint hook saves; ``mmlion.ZeroRedundancyOptimizer`` refuses,
    naming this hook, to save state that was not gathered since its last step. Works
    with MMEngine's ``CheckpointHook`` or any subclass of it; does nothing for other
    optimizers.

    Example:
        >>> custom_hooks = [dict(type='mmlion.ShardedOptimizerHook')]
    """

    def before_saving(self, runner) -> None:
        for wrapper in partial_gradients.optim_wrappers(runner):
            gather = getattr(wrapper.optimizer, 'consolidate_state_dict', None)
            if gather is not None:
                gather(to=0)
