"""mmlion.engine.resume.resumed_data: an iteration-based run resumed without replaying
its data."""
import pytest
import torch


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

    from mmlion.engine.resume.resumed_data import ResumedDataIterator
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
