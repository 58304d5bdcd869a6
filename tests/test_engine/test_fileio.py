"""mmlion.engine.fileio: MMEngine's file backend with atomic writes that replace and
delete only the files mmlion wrote."""
import pytest

from mmlion.engine.fileio import AtomicLocalBackend
from mmlion.utils.ownership import (STAMP_NAME, NotOwnedError, is_owned_file, is_owned_folder,
                                    record_written_folder, write_owned)


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


@pytest.mark.parametrize('change', [None, 'added', 'edited'])
def test_rmtree_deletes_a_recorded_checkpoint_folder_only_while_it_is_as_recorded(tmp_path,
                                                                                change):
    """DeepSpeed's checkpoints are folders (a file per rank): recorded when written where
    nothing stood, rotated away later, unless anything in them changed since."""
    folder = tmp_path / 'epoch_1.pth'
    (folder / 'sub').mkdir(parents=True)
    (folder / 'mp_rank_00_model_states.pt').write_bytes(b'weights')
    (folder / 'sub' / 'optim_states.pt').write_bytes(b'state')
    record_written_folder(str(folder))
    assert is_owned_folder(str(folder))
    if change == 'added':
        (folder / 'notes.txt').write_text('mine')
    elif change == 'edited':
        (folder / 'sub' / 'optim_states.pt').write_bytes(b'changed!')
    AtomicLocalBackend().rmtree(folder)
    assert folder.exists() == (change is not None)
    AtomicLocalBackend().rmtree(tmp_path)  # a folder mmlion never recorded: kept
    assert tmp_path.exists()
