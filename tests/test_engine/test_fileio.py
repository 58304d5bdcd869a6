"""Atomic writes, and the stamp rule for the files mmlion writes into a user's folder."""
import os

import pytest

from mmlion.engine.fileio import AtomicLocalBackend, atomic_write, write_owned
from mmlion.utils.ownership import NotOwnedError, STAMP_NAME, is_owned_file


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / 'ckpt.pth'
    atomic_write(b'old', target)

    def crash(tmp):
        assert open(tmp, 'rb').read() == b'new'  # complete and durable before the rename
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(b'new', target, before_replace=crash)
    assert target.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['ckpt.pth']  # the temporary file is gone


def test_owned_files_are_replaced_foreign_ones_never(tmp_path):
    backend = AtomicLocalBackend()
    ours = tmp_path / 'epoch_1.pth'
    backend.put(b'first', ours)
    assert is_owned_file(ours) and (tmp_path / STAMP_NAME).exists()
    backend.put(b'second', ours)  # mmlion's own file: replaced
    assert ours.read_bytes() == b'second'

    foreign = tmp_path / 'epoch_2.pth'
    foreign.write_bytes(b'a user checkpoint')
    with pytest.raises(NotOwnedError, match='epoch_2.pth'):
        backend.put(b'mmlion', foreign)
    assert foreign.read_bytes() == b'a user checkpoint'

    ours.write_bytes(b'edited by a user')  # changed since mmlion wrote it
    with pytest.raises(NotOwnedError):
        write_owned(b'third', ours)
    assert ours.read_bytes() == b'edited by a user'


def test_a_foreign_stamp_file_is_not_taken_over(tmp_path):
    (tmp_path / STAMP_NAME).write_text('{"mine": true}')
    with pytest.raises(NotOwnedError, match='not mmlion'):
        write_owned(b'x', tmp_path / 'last_checkpoint')
    assert (tmp_path / STAMP_NAME).read_text() == '{"mine": true}'


def test_remove_deletes_only_mmlions_own_files(tmp_path):
    """Every deletion MMEngine's CheckpointHook makes (outdated and previous-best
    checkpoints) goes through the backend's remove."""
    backend = AtomicLocalBackend()
    ours, theirs = tmp_path / 'best_epoch_1.pth', tmp_path / 'best_epoch_2.pth'
    backend.put(b'ours', ours)
    theirs.write_bytes(b'theirs')
    backend.remove(ours)
    backend.remove(theirs)
    backend.rmtree(tmp_path)
    assert not ours.exists() and not is_owned_file(ours)
    assert theirs.read_bytes() == b'theirs'


def test_atomic_write_gives_the_mode_open_would(tmp_path):
    """Not mkstemp's private 0600: a converted config or a checkpoint is readable by
    whoever the umask lets read what the user writes."""
    old = os.umask(0o027)
    try:
        atomic_write(b'x', tmp_path / 'a')
        with open(tmp_path / 'b', 'wb'):
            pass
    finally:
        os.umask(old)
    assert os.stat(tmp_path / 'a').st_mode & 0o777 == os.stat(tmp_path / 'b').st_mode & 0o777
    assert os.stat(tmp_path / 'a').st_mode & 0o777 == 0o640
