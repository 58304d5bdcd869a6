"""ResumableCheckpointHook's parts, fast and in-process: accumulation-window detection,
RNG states, and the stamp rule in a real MMEngine Runner (foreign files in the work
dir are never replaced or deleted)."""
import random

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

import _fault_support  # noqa: F401  (the toy model, dataset and metric)
import mmlion  # noqa: F401
from mmlion.engine.hooks.resumable_checkpoint_hook import get_rng_state, mid_window, set_rng_state
from mmlion.utils.ownership import NotOwnedError


def test_mid_window_is_true_between_the_steps_of_an_accumulation_window():
    model = torch.nn.Linear(2, 1)
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='Lion'),
                                              accumulative_counts=3))
    wrapper.initialize_count_status(model, 0, 9)
    seen = []
    for _ in range(6):
        wrapper.update_params(model(torch.ones(1, 2)).sum())
        seen.append(mid_window(wrapper))
    assert seen == [True, True, False, True, True, False]
    plain = build_optim_wrapper(model, dict(optimizer=dict(type='Lion')))
    assert not mid_window(plain)


def test_rng_states_round_trip():
    state = get_rng_state()
    draws = (random.random(), np.random.rand(), torch.rand(1))
    set_rng_state(state)
    assert draws == (random.random(), np.random.rand(), torch.rand(1))


def _runner(work_dir, max_keep_ckpts=-1, epochs=1, resume=False):
    return Runner(
        model=dict(type='NoisyToyModel'), work_dir=str(work_dir),
        train_dataloader=dict(batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              dataset=dict(type='NoisyToyDataset', size=8),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type='Lion', lr=1e-3)),
        default_hooks=dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook', interval=1,
                                           max_keep_ckpts=max_keep_ckpts)),
        default_scope='mmengine', randomness=dict(seed=0), resume=resume)


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


class _CountingDataset(torch.utils.data.Dataset):
    def __init__(self):
        self.reads = 0

    def __len__(self):
        return 10

    def __getitem__(self, index):
        self.reads += 1
        return index


class _Loop:
    """What ResumedDataIterator reads of an IterBasedTrainLoop."""

    def __init__(self, loader, iteration):
        from mmengine.runner.loops import _InfiniteDataloaderIterator
        self.dataloader, self.iter = loader, iteration
        self.dataloader_iterator = _InfiniteDataloaderIterator(loader)


@pytest.mark.parametrize('sampler', ['InfiniteSampler', 'DefaultSampler'])
def test_resumed_data_iterator_serves_the_next_batch_and_restores_rng_first(sampler,
                                                                            monkeypatch):
    """Resumed at iteration 7: the loop's 7 replay calls return nothing (and, over an
    InfiniteSampler, load nothing); the callback runs before the first batch is loaded;
    that batch is the 8th an uninterrupted loader gives, across an epoch's end."""
    from mmengine.dataset import DefaultSampler, InfiniteSampler
    from mmengine.runner.loops import _InfiniteDataloaderIterator

    from mmlion.engine.hooks.resumed_data import ResumedDataIterator
    # MMEngine sleeps 2 s at each epoch's end under an iteration-based loop.
    monkeypatch.setattr('mmengine.runner.loops.time.sleep', lambda seconds: None)

    def loader(dataset):
        kind = dict(InfiniteSampler=InfiniteSampler, DefaultSampler=DefaultSampler)[sampler]
        return torch.utils.data.DataLoader(dataset, batch_size=3,
                                           sampler=kind(dataset, shuffle=True, seed=5))

    straight = _InfiniteDataloaderIterator(loader(_CountingDataset()))
    expected = [next(straight).tolist() for _ in range(9)][7:]
    dataset = _CountingDataset()
    loop = _Loop(loader(dataset), iteration=7)
    reads_at = []
    resumed = ResumedDataIterator(loop, before_first_batch=lambda: reads_at.append(dataset.reads))
    assert [next(resumed) for _ in range(7)] == [None] * 7
    assert [next(resumed).tolist() for _ in range(2)] == expected
    assert len(reads_at) == 1
    if sampler == 'InfiniteSampler':
        assert reads_at == [0] and dataset.reads == 6  # the two batches served, no more
