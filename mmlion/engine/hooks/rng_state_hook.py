"""``RngStateHook``: training's random numbers, the same after a resume as in an
uninterrupted run (and unshifted by validation)."""
from mmengine.hooks import CheckpointHook
from mmengine.runner import IterBasedTrainLoop

from mmlion.registry import HOOKS
from .. import mmengine_fixes
from ..resume.checkpoint_moments import BeforeEachCheckpoint
from ..resume.payload import RankPayload
from ..resume.resumed_data import ResumedDataIterator
from ..resume.rng import RngStream

__all__ = ['RngStateHook']


def _iteration_based(runner) -> bool:
    return isinstance(runner.train_loop, IterBasedTrainLoop)


@HOOKS.register_module()
class RngStateHook(BeforeEachCheckpoint):
    """Every rank's python, numpy, torch (and CUDA) RNG states, kept in each checkpoint
    and restored on resume.

    At the end of each training epoch (of each iteration, under ``IterBasedTrainLoop``)
    every rank records its RNG states; checkpoints hold all ranks' states, and each rank
    restores its own before the next training batch is loaded, both after a resume and in
    an uninterrupted run (which so also keeps validation from shifting the training
    randomness). Under ``IterBasedTrainLoop`` a resumed run skips the trained batches by
    their sampler indices instead of MMEngine's replay, which loads each and draws from
    the RNGs (:mod:`~mmlion.engine.resume.resumed_data`).

    Its priority, between ``LOW`` and MMEngine's ``CheckpointHook`` (``VERY_LOW``), makes
    it record the states after the other hooks of an iteration or epoch and, where the
    checkpoint hook is about to save, gather every rank's before it does. Works with
    MMEngine's ``CheckpointHook`` or any subclass of it.

    Bitwise resume holds for ``EpochBasedTrainLoop`` with epoch checkpoints and data
    loaders whose workers are not persistent (``num_workers=0`` or
    ``persistent_workers=False``), and for ``IterBasedTrainLoop`` with checkpoints by
    iteration and ``num_workers=0``: data loader workers keep RNG states that no
    checkpoint can hold.

    Example:
        >>> custom_hooks = [dict(type='mmlion.RngStateHook')]
    """

    def __init__(self):
        self._rng = RngStream()  # this rank's training RNG states
        self._payload = RankPayload('rng', 'RngStateHook')

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        workers = getattr(loader, 'num_workers', 0)
        if workers > 0 and (_iteration_based(runner)
                            or getattr(loader, 'persistent_workers', False)):
            runner.logger.warning(
                'RngStateHook: the train_dataloader workers live across checkpoints '
                '(persistent_workers=True, or IterBasedTrainLoop) and keep RNG states no '
                'checkpoint holds, so a resumed run will not be bitwise equal to an '
                'uninterrupted one. num_workers=0 (or, by epoch, persistent_workers=False) '
                'makes it so.')
        checkpoint_hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                               None)
        if checkpoint_hook is not None and not checkpoint_hook.by_epoch \
                and not _iteration_based(runner):
            runner.logger.info(
                'RngStateHook: checkpoints by iteration inside epochs resume with the '
                'model, optimizer and RNG states, but MMEngine restarts the interrupted '
                'epoch\'s data, so the resumed run is not bitwise exact.')

    def before_train_epoch(self, runner) -> None:
        if _iteration_based(runner) and mmengine_fixes.needed('resume_replays_data'):
            if runner.train_loop.iter > 0:  # resumed: skip what was trained, then restore
                runner.train_loop.dataloader_iterator = ResumedDataIterator(
                    runner.train_loop, before_first_batch=self._rng.restore_pending)
            return
        self._rng.restore_pending()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if _iteration_based(runner):
            self._rng.record()
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_val(self, runner) -> None:
        """Under IterBasedTrainLoop validation runs between two batches: the next batch
        then loads with the RNG states training left, as a resumed run loads it."""
        if _iteration_based(runner):
            self._rng.return_to_snapshot()

    def after_train_epoch(self, runner) -> None:
        self._rng.record(restore_next=True)
        super().after_train_epoch(runner)

    def before_saving(self, runner) -> None:
        self._payload.gather(runner, self._rng.for_checkpoint())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._payload.add_to(runner, checkpoint, self._rng.for_checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = self._payload.this_ranks(runner, checkpoint)
        if state is not None:
            self._rng.resume_from(state)
