"""``ResumableCheckpointHook``: the one name for everything a bitwise-exact resume
needs, for configs that want it in one line. It is :class:`AtomicCheckpointHook`, and
adds :class:`RngStateHook`, :class:`PartialGradientHook` and
:class:`ShardedOptimizerHook` to the runner unless the config has them already; each of the three does one job and works alone (see
``docs/fault_tolerance.md`` for the combinations)."""
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
    resume bit for bit, written atomically, ZeRO's included. Takes every argument of MMEngine's ``CheckpointHook``.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='mmlion.ResumableCheckpointHook', interval=1, max_keep_ckpts=3))
    """

    def before_run(self, runner) -> None:
        """Register the companions the runner lacks (before any checkpoint is loaded).
        Registering one at a higher priority moves this hook one place down the list the
        runner is walking, so the runner calls this method twice: the second call finds
        the companions there and adds nothing."""
        for companion in COMPANIONS:
            if not any(isinstance(hook, companion) for hook in runner.hooks):
                runner.register_hook(companion())
        super().before_run(runner)
