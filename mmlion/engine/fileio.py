"""A local file backend whose writes are atomic and never replace a user's file.

MMEngine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes into it,
so a crash (SIGKILL, a full disk, a pre-empted node) during a checkpoint write
leaves a truncated file under the checkpoint's own name, and any file of that name
is overwritten, whoever wrote it. :class:`AtomicLocalBackend` writes to a temporary
file in the same folder, flushes and fsyncs it, and renames it over the target with
``os.replace``, which POSIX makes atomic: readers see the old file or the complete
new one, never a part. It replaces an existing file only when mmlion wrote it (the
stamp rule of :mod:`mmlion.utils.ownership`). ``ResumableCheckpointHook`` uses it.
"""
import logging
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

__all__ = ['AtomicLocalBackend', 'atomic_write', 'write_owned']

BACKEND_NAME = 'mmlion_atomic_local'


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write(data: bytes, filepath: Union[str, Path],
                 before_replace: Optional[Callable[[str], None]] = None) -> None:
    """Write ``data`` to ``filepath`` so that a crash leaves the old file or the
    new one, whole. ``before_replace(tmp)`` runs once the data is durable, just
    before the rename. A failed write removes its temporary file."""
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would make it (mkstemp makes 0600)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_owned(data: bytes, filepath: Union[str, Path]) -> None:
    """:func:`atomic_write`, refusing to replace a file mmlion did not write, and
    recording the new file as mmlion's (before and after the rename)."""
    from mmlion.utils.ownership import check_replaceable, record_written
    filepath = os.fspath(filepath)
    check_replaceable(filepath)

    def record_pending(tmp: str) -> None:
        info = os.stat(tmp)
        record_written(filepath, pending=[info.st_size, info.st_mtime_ns])

    atomic_write(data, filepath, before_replace=record_pending)
    record_written(filepath)


@register_backend(BACKEND_NAME, force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose writes are atomic and replace only mmlion's own files,
    and whose ``remove`` deletes only mmlion's own files: every deletion MMEngine's
    ``CheckpointHook`` makes (outdated checkpoints, the previous best one) goes
    through it. A file that is not mmlion's is kept, with a warning."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_owned(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        write_owned(obj.encode(encoding), filepath)

    def remove(self, filepath: Union[str, Path]) -> None:
        from mmlion.utils.ownership import forget_written, is_owned_file
        filepath = os.fspath(filepath)
        if is_owned_file(filepath):
            os.remove(filepath)
            forget_written(filepath)
        elif osp.lexists(filepath):
            print_log(f'mmlion: kept {filepath!r}, which MMEngine asked to delete: mmlion did '
                      f'not write it (or it changed since), so mmlion does not delete it.',
                      logger='current', level=logging.WARNING)

    def rmtree(self, dir_path: Union[str, Path]) -> None:
        print_log(f'mmlion: kept the folder {os.fspath(dir_path)!r}, which MMEngine asked to '
                  f'delete: mmlion deletes only single files it wrote.', logger='current',
                  level=logging.WARNING)
