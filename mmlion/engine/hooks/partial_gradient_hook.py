"""``PartialGradientHook``: a checkpoint inside a gradient-accumulation window resumes
with the gradient accumulated so far."""
from mmengine.hooks import Hook

from mmlion.registry import HOOKS
from ..resume import partial_gradients
from ..resume.payload import add_from_every_rank, this_ranks

__all__ = ['PartialGradientHook']


@HOOKS.register_module()
class PartialGradientHook(Hook):
    """When a checkpoint falls inside an accumulation window (``accumulative_counts``
    that does not divide the epoch, or checkpoints by iteration), each rank's partial
    gradient is saved with it and, on resume, restored into ``p.grad``, so the window
    ends as it would have. Works with MMEngine's ``CheckpointHook`` or any other.

    Example:
        >>> custom_hooks = [dict(type='mmlion.PartialGradientHook')]
    """

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        add_from_every_rank(checkpoint, 'grads', partial_gradients.collect(runner))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        grads = this_ranks(runner, checkpoint, 'grads', 'PartialGradientHook')
        restored = partial_gradients.restore(runner, grads)
        if restored:
            runner.logger.info(f'PartialGradientHook: restored the partial gradient of an '
                               f'accumulation window ({restored} tensors).')
