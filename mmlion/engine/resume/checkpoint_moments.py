"""When the runner's checkpoint hook may save, asked from every rank before it does.

MMEngine's ``Runner.save_checkpoint`` runs on rank 0 only (``master_only``), and with it
every hook's ``before_save_checkpoint``: what each rank holds (its RNG states, its
partial gradient, its shard of a ZeRO optimizer's state) must reach rank 0 earlier, in
an event every rank runs, and only where a checkpoint follows (a gather per iteration
would cost a sync each step). :func:`may_save_now` answers by the checkpoint hook's own
rule, read from its settings (``by_epoch``, ``interval``, ``save_begin``, ``save_last``,
``save_best``) with ``Hook``'s own helpers, as ``CheckpointHook``'s ``after_train_iter``,
``after_train_epoch`` and ``after_val_epoch`` decide. It may answer yes where no
checkpoint follows (``save_best``: every validation), never no where one does.
"""
from mmengine.hooks import CheckpointHook, Hook

__all__ = ['may_save_now', 'BeforeEachCheckpoint']

EVENTS = ('train_iter', 'train_epoch', 'val_epoch')


def may_save_now(runner, event: str) -> bool:
    """Whether a ``CheckpointHook`` of ``runner`` (MMEngine's or a subclass) may save at
    the end of ``event``, one of :data:`EVENTS`; call it from that event, before the
    checkpoint hook's own (a higher priority than its ``VERY_LOW``)."""
    assert event in EVENTS, event
    for hook in runner.hooks:
        if not isinstance(hook, CheckpointHook):
            continue
        if event == 'train_epoch' and hook.by_epoch and (
                hook.every_n_epochs(runner, hook.interval, hook.save_begin)
                or (hook.save_last and hook.is_last_train_epoch(runner))):
            return True
        if event == 'train_iter' and not hook.by_epoch and (
                hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                or (hook.save_last and hook.is_last_train_iter(runner))):
            return True
        if event == 'val_epoch' and hook.save_best:
            return True
    return False


class BeforeEachCheckpoint(Hook):
    """A hook that runs :meth:`before_saving` on every rank at each moment the runner's
    checkpoint hook may save, just before it does (priority 80: after ``LOW``, before
    ``CheckpointHook``'s ``VERY_LOW``)."""

    priority = 80

    def before_saving(self, runner) -> None:
        raise NotImplementedError

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if may_save_now(runner, 'train_iter'):
            self.before_saving(runner)

    def after_train_epoch(self, runner) -> None:
        if may_save_now(runner, 'train_epoch'):
            self.before_saving(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if may_save_now(runner, 'val_epoch'):
            self.before_saving(runner)
