"""Write a file so that a crash leaves the old file or the new one, whole: the lowest
primitive of mmlion's file handling (it imports nothing of mmlion's).

MMEngine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes into it, so a
crash (SIGKILL, a full disk, a pre-empted node) during a checkpoint write leaves a
truncated file under the checkpoint's own name. :func:`atomic_write` writes to a
temporary file in the same folder, flushes and fsyncs it, and renames it over the
target with ``os.replace``, which POSIX makes atomic.
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

__all__ = ['atomic_write']


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
