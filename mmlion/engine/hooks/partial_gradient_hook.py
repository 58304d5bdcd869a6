"""``PartialGradientHook``: a checkpoint inside a gradient-accumulation window resumes
with the gradient accumulated so far."""
from mmlion.registry import HOOKS
from ..resume import partial_gradients
from ..resume.checkpoint_moments import BeforeEachCheckpoint
from ..resume.payload import RankPayload

__all__ = ['PartialGradientHook']


@HOOKS.register_module()
class PartialGradientHook(BeforeEachCheckpoint):
    """When a checkpoint falls inside an accumulation window (``accumulative_counts``
    that does not divide the epoch, or checkpoints by iteration), each rank's partial
    gradient is saved with it and, on resume, restored into ``p.grad``, so the window
    ends as it would have. Works with MMEngine's ``CheckpointHook`` or any subclass of it.

    Example:
        >>> custom_hooks = [dict(type='mmlion.PartialGradientHook')]
    """

    def __init__(self):
        self._payload = RankPayload('grads', 'PartialGradientHook')

    def before_saving(self, runner) -> None:
        self._payload.gather(runner, partial_gradients.collect(runner))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._payload.add_to(runner, checkpoint, lambda: partial_gradients.collect(runner))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        restored = partial_gradients.restore(runner, self._payload.this_ranks(runner, checkpoint))
        if restored:
            runner.logger.info(f'PartialGradientHook: restored the partial gradient of an '
                               f'accumulation window ({restored} tensors).')
