"""ResumableCheckpointHook in a real MMEngine Runner, fast and in-process: the stamp
rule (foreign files in the work dir are never replaced or deleted), rotation, and a
crash during a save leaving the previous checkpoint and its pointer whole."""
import pytest

from helpers import toy_runner
from mmlion.utils.ownership import NotOwnedError, is_owned_file


def _runner(work_dir, max_keep_ckpts=-1, epochs=1, resume=False):
    return toy_runner(work_dir, **{'train_cfg.max_epochs': epochs, 'resume': resume,
                                   'train_cfg.val_interval': 100,  # no validation: fast
                                   'default_hooks.checkpoint.max_keep_ckpts': max_keep_ckpts})


def test_a_foreign_last_checkpoint_stops_the_run_before_training(tmp_path):
    (tmp_path / 'last_checkpoint').write_text('/somewhere/else/epoch_9.pth')
    with pytest.raises(NotOwnedError, match='last_checkpoint'):
        _runner(tmp_path).train()
    assert (tmp_path / 'last_checkpoint').read_text() == '/somewhere/else/epoch_9.pth'


def test_a_foreign_checkpoint_of_the_same_name_is_never_replaced(tmp_path):
    (tmp_path / 'epoch_1.pth').write_bytes(b'a checkpoint from another run')
    with pytest.raises(NotOwnedError, match='epoch_1.pth'):
        _runner(tmp_path).train()
    assert (tmp_path / 'epoch_1.pth').read_bytes() == b'a checkpoint from another run'


@pytest.mark.parametrize('replaced_by_user', [False, True])
def test_rotation_deletes_own_checkpoints_only(tmp_path, replaced_by_user):
    """max_keep_ckpts=2: resuming after epoch 2 and saving epoch 3 makes epoch_1.pth
    outdated. mmlion deletes it if it is the file mmlion wrote, and keeps it (with a
    warning) if a user has put their own file there since."""
    _runner(tmp_path, max_keep_ckpts=2, epochs=2).train()
    if replaced_by_user:
        (tmp_path / 'epoch_1.pth').write_bytes(b'mine now')
    _runner(tmp_path, max_keep_ckpts=2, epochs=3, resume=True).train()
    kept = sorted(p.name for p in tmp_path.glob('epoch_*.pth'))
    if replaced_by_user:
        assert kept == ['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']
        assert (tmp_path / 'epoch_1.pth').read_bytes() == b'mine now'
    else:
        assert kept == ['epoch_2.pth', 'epoch_3.pth']


def test_a_crash_while_saving_keeps_the_outdated_checkpoint_and_the_pointer(tmp_path,
                                                                            monkeypatch):
    """MMEngine deletes the outdated checkpoint before it saves the new one; mmlion holds
    the deletion back until the new checkpoint and its pointer are complete."""
    _runner(tmp_path, max_keep_ckpts=1, epochs=1).train()
    pointer = (tmp_path / 'last_checkpoint').read_text()
    runner = _runner(tmp_path, max_keep_ckpts=1, epochs=2, resume=True)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed in the middle of writing epoch 2

    monkeypatch.setattr(runner, 'save_checkpoint', crash)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert (tmp_path / 'epoch_1.pth').exists()
    assert (tmp_path / 'last_checkpoint').read_text() == pointer
    assert is_owned_file(str(tmp_path / 'last_checkpoint'))
