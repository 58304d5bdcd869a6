"""``ResumableCheckpointHook``: the one name for everything a bitwise-exact resume
needs, for configs that want it in one line. It is :class:`AtomicCheckpointHook`, and
runs the events of :class:`RngStateHook`, :class:`PartialGradientHook` and
:class:`ShardedOptimizerHook` itself, each just before its own, for every one of them
the config does not list already; each of the four does one job and works alone (see
``docs/fault_tolerance.md`` for the combinations).

The companions run inside this hook rather than being registered with the runner:
MMEngine's ``FlexibleRunner`` loads a checkpoint before ``before_run``, the first event
a hook could register others in, so registered companions would miss the resume."""
from typing import List

from mmlion.registry import HOOKS
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .partial_gradient_hook import PartialGradientHook
from .rng_state_hook import RngStateHook
from .sharded_optimizer_hook import ShardedOptimizerHook

__all__ = ['ResumableCheckpointHook']

COMPANIONS = (RngStateHook, PartialGradientHook, ShardedOptimizerHook)


@HOOKS.register_module()
class ResumableCheckpointHook(AtomicCheckpointHook):
    """``default_hooks.checkpoint=dict(type='mmlion.ResumableCheckpointHook', ...)`` is
    ``AtomicCheckpointHook`` with ``custom_hooks`` ``mmlion.RngStateHook``,
    ``mmlion.PartialGradientHook`` and ``mmlion.ShardedOptimizerHook``: checkpoints that
    resume bit for bit, written atomically, ZeRO's included. Takes every argument of
    MMEngine's ``CheckpointHook``.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='mmlion.ResumableCheckpointHook', interval=1, max_keep_ckpts=3))
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._own = [companion() for companion in COMPANIONS]

    def _companions(self, runner) -> List:
        """The companions the runner does not run itself (asked at each event: cheap)."""
        return [own for own in self._own
                if not any(isinstance(hook, type(own)) for hook in runner.hooks)]

    def before_train(self, runner) -> None:
        for companion in self._companions(runner):
            companion.before_train(runner)
        super().before_train(runner)

    def before_train_epoch(self, runner) -> None:
        for companion in self._companions(runner):
            companion.before_train_epoch(runner)
        super().before_train_epoch(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        for companion in self._companions(runner):
            companion.after_train_iter(runner, batch_idx, data_batch, outputs)
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_val(self, runner) -> None:
        for companion in self._companions(runner):
            companion.after_val(runner)
        super().after_val(runner)

    def after_train_epoch(self, runner) -> None:
        for companion in self._companions(runner):
            companion.after_train_epoch(runner)
        super().after_train_epoch(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        for companion in self._companions(runner):
            companion.after_val_epoch(runner, metrics)
        super().after_val_epoch(runner, metrics)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for companion in self._companions(runner):
            companion.before_save_checkpoint(runner, checkpoint)
        super().before_save_checkpoint(runner, checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        for companion in self._companions(runner):
            companion.after_load_checkpoint(runner, checkpoint)
        super().after_load_checkpoint(runner, checkpoint)
