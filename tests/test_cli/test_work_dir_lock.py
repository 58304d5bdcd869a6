"""One run per work dir: the lock names the run that holds it, and a run that dies
(SIGKILL, no clean-up) leaves nothing that blocks the next."""
import json
import os
import signal

import pytest

from helpers import hold_in_subprocess
from mmlion.cli import ConfigError, hold_work_dir, work_dir_lock
from mmlion.utils.ownership import NotOwnedError

@pytest.fixture
def release():
    """Close the locks this test process takes (a run holds its own until it exits)."""
    yield
    while work_dir_lock._held:
        os.close(work_dir_lock._held.pop())


@pytest.mark.slow  # starts a Python process that holds the lock
def test_a_held_work_dir_names_the_holder_and_a_killed_holder_blocks_nothing(
        tmp_path, monkeypatch, release):
    work_dir = tmp_path / 'run'
    holder = hold_in_subprocess(work_dir)
    try:
        with pytest.raises(ConfigError) as info:
            hold_work_dir(str(work_dir))
        message = str(info.value)
        assert str(work_dir) in message and f'pid {holder.pid}' in message
        started = json.loads((work_dir / work_dir_lock.HOLDER_NAME).read_text())['started']
        assert started in message
        for launcher, variable in work_dir_lock.RANK_VARIABLES.items():
            with monkeypatch.context() as patch:
                patch.setenv(variable, '1')  # rank 1 of a job: rank 0 holds it for all
                hold_work_dir(str(work_dir), launcher)
                assert not work_dir_lock._held
        with monkeypatch.context() as patch:
            patch.setenv('RANK', '1')  # a plain run in a shell that has RANK set
            with pytest.raises(ConfigError):
                hold_work_dir(str(work_dir), 'none')
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    hold_work_dir(str(work_dir))  # the OS released the dead run's lock
    holder_now = json.loads((work_dir / work_dir_lock.HOLDER_NAME).read_text())
    assert holder_now['pid'] == os.getpid()


def test_a_holder_file_mmlion_did_not_write_is_left_alone(tmp_path, release):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    theirs = work_dir / work_dir_lock.HOLDER_NAME
    theirs.write_text('a user file')
    before = os.stat(theirs).st_mtime_ns
    with pytest.raises(NotOwnedError, match=work_dir_lock.HOLDER_NAME):
        hold_work_dir(str(work_dir))
    assert theirs.read_text() == 'a user file' and os.stat(theirs).st_mtime_ns == before
