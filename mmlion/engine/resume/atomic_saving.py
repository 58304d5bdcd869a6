"""MMEngine's checkpoint saving, extended so that a crash at any point leaves a complete
checkpoint that ``last_checkpoint`` names, and so that only mmlion's own files are
replaced or deleted.

MMEngine 0.10's ``CheckpointHook._save_checkpoint_with_step`` (and
``_save_best_checkpoint``) deletes the outdated checkpoint first, then saves the new
one, then writes ``last_checkpoint`` in place with ``open('w')``: a crash in between
leaves fewer checkpoints than ``max_keep_ckpts`` and a pointer to a partial or deleted
file. :class:`AtomicCheckpointSaving` runs MMEngine's own methods, with three changes
made around them rather than in a copy of them:

* the deletions they ask of the file backend are held back, and made only once the new
  checkpoint and the pointer are complete (through the backend, so only mmlion's own
  files and folders go: :class:`~mmlion.engine.fileio.AtomicLocalBackend`);
* the pointer MMEngine writes goes to a scratch folder and is then written into the
  work dir atomically, as mmlion's own file;
* a checkpoint folder (DeepSpeed's) written where nothing stood is recorded as mmlion's
  once every rank has written its part, so that rotation may delete it later.
"""
import contextlib
import os.path as osp
import tempfile

from mmengine.dist import barrier, is_main_process

from mmlion.utils.ownership import record_written_folder, write_owned
from ..mmengine_fixes import needed

__all__ = ['AtomicCheckpointSaving']


class _DeferredRemovals:
    """The hook's file backend, holding back ``remove`` and ``rmtree`` for later."""

    def __init__(self, backend):
        self.backend = backend
        self._calls = []

    def remove(self, path) -> None:
        self._calls.append(('remove', path))

    def rmtree(self, path) -> None:
        self._calls.append(('rmtree', path))

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def replay(self) -> None:
        for name, path in self._calls:
            getattr(self.backend, name)(path)


class _SavingRunner:
    """The runner as MMEngine's saving sees it: ``work_dir`` is a scratch folder (where
    MMEngine writes the pointer), and each checkpoint folder it saves is recorded."""

    def __init__(self, runner, scratch: str):
        self._runner = runner
        self.work_dir = scratch

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        path = osp.join(out_dir, filename)
        new = not osp.lexists(path)
        result = self._runner.save_checkpoint(out_dir, filename, *args, **kwargs)
        barrier()  # every rank's part of a folder checkpoint is on disk
        if new and is_main_process() and osp.isdir(path):
            record_written_folder(path)
        return result


class AtomicCheckpointSaving:
    """A mixin for ``CheckpointHook``: its saving, atomic and deleting only mmlion's own
    files, where ``self._atomic`` (a local folder and no custom backend)."""

    _atomic = False

    @contextlib.contextmanager
    def _saving(self, runner):
        if not (self._atomic and needed('checkpoint_order')) or isinstance(runner, _SavingRunner):
            yield runner
            return
        removals = _DeferredRemovals(self.file_backend)
        self.file_backend = removals
        with tempfile.TemporaryDirectory(prefix='mmlion-pointer-') as scratch:
            try:
                yield _SavingRunner(runner, scratch)
            finally:
                self.file_backend = removals.backend
            if not is_main_process():
                return
            pointer = osp.join(scratch, 'last_checkpoint')
            if osp.exists(pointer):
                with open(pointer, 'rb') as f:
                    write_owned(f.read(), osp.join(runner.work_dir, 'last_checkpoint'))
        removals.replay()

    def _save_checkpoint_with_step(self, runner, step, meta):
        with self._saving(runner) as saving:
            super()._save_checkpoint_with_step(saving, step, meta)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._saving(runner) as saving:
            super()._save_best_checkpoint(saving, metrics)
