"""``AtomicCheckpointHook``: MMEngine's ``CheckpointHook`` (saving and rotating, nothing
else) with writes a crash cannot leave half done, deleting only what mmlion wrote."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmlion.registry import HOOKS
from mmlion.utils.ownership import check_replaceable
from .. import mmengine_fixes
from ..fileio import BACKEND_NAME
from ..resume.atomic_saving import AtomicCheckpointSaving

__all__ = ['AtomicCheckpointHook']


@HOOKS.register_module()
class AtomicCheckpointHook(AtomicCheckpointSaving, CheckpointHook):
    """``CheckpointHook`` whose writes are atomic. Takes every argument of MMEngine's.

    For local folders the checkpoint and ``last_checkpoint`` are written to temporary
    files and renamed into place (:class:`~mmlion.engine.fileio.AtomicLocalBackend`),
    and outdated checkpoints (DeepSpeed's folders too) are removed only after the new
    one is complete, and only where mmlion wrote them (a file of the same name that
    mmlion did not write stops the run before training). Other backends save as
    MMEngine does.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='mmlion.AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        self._atomic = (self.backend_args is None and self.file_client_args is None
                        and mmengine_fixes.is_local_path(out_dir))
        if self._atomic:
            self.backend_args = dict(backend=BACKEND_NAME)
            if is_main_process():  # fail now, not at the first checkpoint
                check_replaceable(osp.join(runner.work_dir, 'last_checkpoint'))
        super().before_train(runner)
