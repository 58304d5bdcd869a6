"""mmlion.utils.atomic: a write leaves the old file or the new one, whole."""
import os

import pytest

from mmlion.utils.atomic import atomic_write


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
