"""A local file backend whose writes are atomic.

MMEngine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes into it,
so a crash (SIGKILL, a full disk, a pre-empted node) during a checkpoint write
leaves a truncated file under the checkpoint's own name. :class:`AtomicLocalBackend`
writes to a temporary file in the same folder, flushes and fsyncs it, and renames it
over the target with ``os.replace``, which POSIX makes atomic: readers see the old
file or the complete new one, never a part. ``ResumableCheckpointHook`` uses it.
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

__all__ = ['AtomicLocalBackend', 'atomic_write']

BACKEND_NAME = 'mmlion_atomic_local'


def atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` so that a crash leaves the old file or the
    new one, whole. A failed write removes its temporary file."""
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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


@register_backend(BACKEND_NAME, force=True)
class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` with atomic ``put`` and ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)
