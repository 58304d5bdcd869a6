"""A local file backend for MMEngine whose writes are atomic and never replace a
user's file.

MMEngine's ``LocalBackend.put`` writes into the target in place, so a crash during a
checkpoint write leaves a truncated file under the checkpoint's own name, and any file
of that name is overwritten, whoever wrote it. :class:`AtomicLocalBackend` writes with
:func:`mmlion.utils.ownership.write_owned`: atomically (:mod:`mmlion.utils.atomic`), and
replacing an existing file only when mmlion wrote it (the stamp rule of
:mod:`mmlion.utils.ownership`). ``AtomicCheckpointHook`` uses it.
"""
import logging
import os
import os.path as osp
import shutil
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

from mmlion.utils.ownership import (forget_written, is_owned_file, is_owned_folder,
                                    write_owned)

__all__ = ['AtomicLocalBackend', 'BACKEND_NAME']

BACKEND_NAME = 'mmlion_atomic_local'


@register_backend(BACKEND_NAME, force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose writes are atomic and replace only mmlion's own files,
    and whose ``remove`` deletes only mmlion's own files: every deletion MMEngine's
    ``CheckpointHook`` makes (outdated checkpoints, the previous best one) goes
    through it. ``rmtree`` likewise deletes only a checkpoint folder recorded as
    mmlion's (:func:`~mmlion.utils.ownership.record_written_folder`). Anything else is
    kept, with a warning."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_owned(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        write_owned(obj.encode(encoding), filepath)

    def remove(self, filepath: Union[str, Path]) -> None:
        _delete_if_owned(os.fspath(filepath), is_owned_file, os.remove, '')

    def rmtree(self, dir_path: Union[str, Path]) -> None:
        _delete_if_owned(os.fspath(dir_path), is_owned_folder, shutil.rmtree, 'the folder ')


def _delete_if_owned(path: str, is_owned, delete, kind: str) -> None:
    """Delete ``path`` if the stamp rule proves it mmlion's; else keep it, saying so."""
    if is_owned(path):
        delete(path)
        forget_written(path)
    elif osp.lexists(path):
        print_log(f'mmlion: kept {kind}{path!r}, which MMEngine asked to delete: mmlion did '
                  f'not write it (or it changed since), so mmlion does not delete it.',
                  logger='current', level=logging.WARNING)
