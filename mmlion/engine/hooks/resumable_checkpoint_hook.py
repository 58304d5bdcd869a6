"""``ResumableCheckpointHook``: MMEngine's ``CheckpointHook`` plus what a bitwise-exact
resume needs and MMEngine 0.10 lacks, each concern in a module of its own under
:mod:`mmlion.engine.resume` (RNG states, a partial accumulation window, ZeRO's sharded
state, the resumed data, atomic saving); this hook only calls them at the right points
of the Runner's life. Epoch-based and iteration-based training loops both resume bit
for bit.
"""
import os.path as osp
from typing import Optional

from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.runner import IterBasedTrainLoop

from mmlion.registry import HOOKS
from mmlion.utils.ownership import check_replaceable
from .. import mmengine_fixes
from ..fileio import BACKEND_NAME
from ..resume import partial_gradients, sharded_optimizers
from ..resume.atomic_saving import AtomicCheckpointSaving
from ..resume.resumed_data import ResumedDataIterator
from ..resume.rng import RngStream

__all__ = ['ResumableCheckpointHook']

_CKPT_KEY = 'mmlion_resume'


def _iteration_based(runner) -> bool:
    return isinstance(runner.train_loop, IterBasedTrainLoop)


@HOOKS.register_module()
class ResumableCheckpointHook(AtomicCheckpointSaving, CheckpointHook):
    """``CheckpointHook`` whose checkpoints resume bitwise.

    Takes every argument of MMEngine's ``CheckpointHook``. On top of it:

    * **RNG states.** At the end of each training epoch (of each iteration, under
      ``IterBasedTrainLoop``) every rank records its python, numpy, torch (and
      CUDA) RNG states; checkpoints hold all ranks' states, and each rank
      restores its own before the next training epoch (before the next batch is
      loaded), both after a resume and in an uninterrupted run (which so also
      keeps validation from shifting the training randomness).
    * **Iteration-based training.** On resume, MMEngine replays the data loader
      to skip the batches already trained, loading and augmenting each; with
      ``InfiniteSampler`` (mmseg's default) only the sampler's indices are
      skipped, so resuming at iteration 80k costs no data loading.
    * **Gradient accumulation.** When a checkpoint falls inside an accumulation
      window (``accumulative_counts`` that does not divide the epoch), each
      rank's partial gradient is saved and restored into ``p.grad``.
    * **Atomic writes.** For local folders the checkpoint and ``last_checkpoint``
      are written to temporary files and renamed into place
      (:class:`~mmlion.engine.fileio.AtomicLocalBackend`), and outdated
      checkpoints (DeepSpeed's folders too) are removed only after the new one is
      complete, and only where mmlion wrote them.
    * **ZeRO.** Optimizers with ``consolidate_state_dict`` (torch's and mmlion's
      ``ZeroRedundancyOptimizer``) are consolidated on all ranks before rank 0
      saves, instead of deadlocking.

    Bitwise resume holds for ``EpochBasedTrainLoop`` with epoch checkpoints and
    data loaders whose workers are not persistent (``num_workers=0`` or
    ``persistent_workers=False``), and for ``IterBasedTrainLoop`` with checkpoints
    by iteration and ``num_workers=0``: data loader workers keep RNG states that no
    checkpoint can hold (under ``IterBasedTrainLoop`` they live the whole run).

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='mmlion.ResumableCheckpointHook', interval=1, max_keep_ckpts=3))
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rng = RngStream()                  # this rank's training RNG states
        self._payload: Optional[dict] = None     # what rank 0 adds to the checkpoint

    # -- set-up -----------------------------------------------------------------------
    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        self._atomic = (self.backend_args is None and self.file_client_args is None
                        and mmengine_fixes.is_local_path(out_dir))
        if self._atomic:
            self.backend_args = dict(backend=BACKEND_NAME)
            if is_main_process():  # fail now, not at the first checkpoint
                check_replaceable(osp.join(runner.work_dir, 'last_checkpoint'))
        super().before_train(runner)
        loader = runner.train_dataloader
        workers = getattr(loader, 'num_workers', 0)
        if workers > 0 and (_iteration_based(runner)
                            or getattr(loader, 'persistent_workers', False)):
            runner.logger.warning(
                'ResumableCheckpointHook: the train_dataloader workers live across '
                'checkpoints (persistent_workers=True, or IterBasedTrainLoop) and keep '
                'RNG states no checkpoint holds, so a resumed run will not be bitwise '
                'equal to an uninterrupted one. num_workers=0 (or, by epoch, '
                'persistent_workers=False) makes it so.')
        if not self.by_epoch and not _iteration_based(runner):
            runner.logger.info(
                'ResumableCheckpointHook: checkpoints by iteration inside epochs resume '
                'with the model, optimizer and RNG states, but MMEngine restarts the '
                'interrupted epoch\'s data, so the resumed run is not bitwise exact.')

    # -- the RNG stream of training ---------------------------------------------------
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

    # -- saving -----------------------------------------------------------------------
    def _collect(self, runner) -> None:
        """On every rank, before rank 0 saves: gather what the checkpoint needs."""
        sharded_optimizers.consolidate(runner)
        mine = dict(rng=self._rng.for_checkpoint(), grads=partial_gradients.collect(runner))
        everyone = all_gather_object(mine) if get_world_size() > 1 else [mine]
        self._payload = dict(version=1, world_size=get_world_size(),
                             rng=[r['rng'] for r in everyone],
                             grads=[r['grads'] for r in everyone])

    def _save_checkpoint(self, runner) -> None:
        self._collect(runner)
        super()._save_checkpoint(runner)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if self.save_best:
            self._collect(runner)
        super()._save_best_checkpoint(runner, metrics)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._payload is not None:
            checkpoint[_CKPT_KEY] = self._payload

    # -- resuming ---------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # load_from (fine-tuning, testing) takes the weights only
        payload = checkpoint.get(_CKPT_KEY)
        if payload is None:
            runner.logger.info(
                'ResumableCheckpointHook: this checkpoint holds no RNG states; the '
                'resumed run continues correctly but not bitwise like an uninterrupted one.')
            return
        rank, world_size = get_rank(), get_world_size()
        if payload['world_size'] != world_size:
            runner.logger.warning(
                f'ResumableCheckpointHook: the checkpoint was saved by '
                f'{payload["world_size"]} processes and this run has {world_size}; RNG '
                f'states and partial gradients are not restored.')
            return
        self._rng.resume_from(payload['rng'][rank])
        restored = partial_gradients.restore(runner, payload['grads'][rank])
        if restored:
            runner.logger.info(
                f'ResumableCheckpointHook: restored the partial gradient of an '
                f'accumulation window ({restored} tensors).')
