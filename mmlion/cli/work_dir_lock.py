"""One run per work dir: a second ``tools/train.py`` (or ``dist_train.sh``) on a work
dir that a live run holds fails at once, naming the other run.

The lock is the operating system's (``flock`` on ``.mmlion-run.lock``, an empty file
that is never written): it ends with the process that holds it, however that process
ends, so a crashed or killed run leaves nothing that blocks the next. Who holds it
(pid, host, start time, command) is written beside it, in ``.mmlion-run.json``, by
mmlion's stamp rule (:mod:`mmlion.utils.ownership`: it replaces only a copy it wrote).
In a job of several processes, global rank 0 holds the lock for all of them.
"""
import datetime
import fcntl
import json
import os
import os.path as osp
import socket
import sys
from typing import List

from mmlion.utils.config_error import ConfigError
from mmlion.utils.ownership import write_owned

__all__ = ['LOCK_NAME', 'HOLDER_NAME', 'hold_work_dir']

LOCK_NAME = '.mmlion-run.lock'
HOLDER_NAME = '.mmlion-run.json'
_held: List[int] = []  # this process's lock: open until it exits


# Where each launcher tells a process its global rank, before MMEngine's set-up runs.
RANK_VARIABLES = {'pytorch': 'RANK', 'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}


def hold_work_dir(work_dir: str, launcher: str = 'none') -> None:
    """Take ``work_dir``'s lock for this run, or raise :class:`ConfigError` naming the
    run that holds it. Only global rank 0 of a job (as ``launcher`` numbers them)
    takes it."""
    variable = RANK_VARIABLES.get(launcher)
    if variable is not None and int(os.environ.get(variable, '0')) != 0:
        return
    os.makedirs(work_dir, exist_ok=True)
    fd = os.open(osp.join(work_dir, LOCK_NAME), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f'work_dir {work_dir!r} is in use by another run '
                          f'({_holder(work_dir)}): two runs in one work dir overwrite each '
                          f"other's checkpoints and last_checkpoint. Wait for it to end, or "
                          f'give this run another --work-dir') from None
    _held.append(fd)
    holder = dict(pid=os.getpid(), host=socket.gethostname(),
                  started=datetime.datetime.now().isoformat(timespec='seconds'),
                  command=' '.join(sys.argv))
    write_owned(json.dumps(holder).encode(), osp.join(work_dir, HOLDER_NAME))


def _holder(work_dir: str) -> str:
    try:
        with open(osp.join(work_dir, HOLDER_NAME)) as f:
            holder = json.load(f)
        return (f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: "
                f"{holder['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return 'it is starting; its pid is not written yet'
