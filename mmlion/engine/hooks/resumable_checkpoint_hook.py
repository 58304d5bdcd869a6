"""``ResumableCheckpointHook``: MMEngine's ``CheckpointHook`` plus what a bitwise-exact
resume needs and 0.10.7 lacks. The RNG states of every rank and a half-accumulated
gradient travel with the checkpoint; checkpoints and the ``last_checkpoint`` pointer
are written atomically and replace or delete only files mmlion wrote (the stamp rule
of :mod:`mmlion.utils.ownership`); a ZeRO-sharded optimizer is consolidated on every
rank before rank 0 saves it. Epoch-based and iteration-based training loops both
resume bit for bit.
"""
import os.path as osp
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.fileio.io import _parse_uri_prefix
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop

from mmlion.registry import HOOKS
from mmlion.utils.ownership import check_replaceable, write_owned
from ..fileio import BACKEND_NAME
from .resumed_data import ResumedDataIterator

__all__ = ['ResumableCheckpointHook', 'get_rng_state', 'set_rng_state', 'mid_window']

_CKPT_KEY = 'mmlion_resume'


def get_rng_state() -> dict:
    """Every RNG a training step may draw from, in this process."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _optim_wrappers(runner) -> List[OptimWrapper]:
    wrapper = runner.optim_wrapper
    if isinstance(wrapper, OptimWrapperDict):
        return list(wrapper.values())
    return [wrapper] if isinstance(wrapper, OptimWrapper) else []


def _bare_model(runner):
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def _iteration_based(runner) -> bool:
    return isinstance(runner.train_loop, IterBasedTrainLoop)


def mid_window(wrapper: OptimWrapper) -> bool:
    """True when gradients of a partial accumulation window are in ``p.grad``."""
    counts = getattr(wrapper, '_accumulative_counts', 1)
    return counts > 1 and wrapper._inner_count % counts != 0


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
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
      checkpoints are removed only after the new one is complete.
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
        self._rng_snapshot: Optional[dict] = None   # this rank's, from the last epoch end
        self._to_restore: Optional[dict] = None      # restore before the next train epoch
        self._payload: Optional[dict] = None         # what rank 0 adds to the checkpoint

    # -- set-up -----------------------------------------------------------------------
    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        self._atomic = (self.backend_args is None and self.file_client_args is None
                        and _parse_uri_prefix(out_dir) == '')
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
        if _iteration_based(runner):
            if runner.train_loop.iter > 0:  # resumed: skip what was trained, then restore
                runner.train_loop.dataloader_iterator = ResumedDataIterator(
                    runner.train_loop, before_first_batch=self._restore_rng)
            return
        self._restore_rng()

    def _restore_rng(self) -> None:
        if self._to_restore is not None:
            set_rng_state(self._to_restore)
            self._to_restore = None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if _iteration_based(runner):
            self._rng_snapshot = get_rng_state()
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_val(self, runner) -> None:
        """Under IterBasedTrainLoop validation runs between two batches: the next batch
        then loads with the RNG states training left, as a resumed run loads it."""
        if self._rng_snapshot is not None and _iteration_based(runner):
            set_rng_state(self._rng_snapshot)

    def after_train_epoch(self, runner) -> None:
        self._rng_snapshot = get_rng_state()
        self._to_restore = self._rng_snapshot
        super().after_train_epoch(runner)

    # -- saving -----------------------------------------------------------------------
    def _collect(self, runner) -> None:
        """On every rank, before rank 0 saves: gather what the checkpoint needs."""
        for wrapper in _optim_wrappers(runner):
            consolidate = getattr(wrapper.optimizer, 'consolidate_state_dict', None)
            if consolidate is not None:
                consolidate(to=0)
        rng = self._rng_snapshot if self._rng_snapshot is not None else get_rng_state()
        grads = None
        if any(mid_window(w) for w in _optim_wrappers(runner)):
            grads = {name: p.grad.detach().cpu().clone()
                     for name, p in _bare_model(runner).named_parameters()
                     if p.grad is not None}
        mine = dict(rng=rng, grads=grads)
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

    def _save_checkpoint_with_step(self, runner, step, meta):
        """MMEngine's version, reordered so that a crash at any point leaves a
        complete checkpoint that ``last_checkpoint`` names: write the new one
        (atomically), then the pointer (atomically), then remove old ones."""
        if not self._atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = None
        if self.max_keep_ckpts > 0:
            if not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    outdated = self.keep_ckpt_ids.popleft()
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, ckpt_filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        write_owned(str(self.last_ckpt).encode(), osp.join(runner.work_dir, 'last_checkpoint'))
        if outdated is not None:  # the backend deletes it only if mmlion wrote it
            self.file_backend.remove(
                self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated)))

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
        self._to_restore = payload['rng'][rank]
        self._rng_snapshot = self._to_restore
        grads = payload['grads'][rank]
        if grads:
            restored = 0
            for name, p in _bare_model(runner).named_parameters():
                if name in grads:
                    p.grad = grads[name].to(device=p.device, dtype=p.dtype)
                    restored += 1
            runner.logger.info(
                f'ResumableCheckpointHook: restored the partial gradient of an '
                f'accumulation window ({restored} tensors).')
