"""Where a resumed ``IterBasedTrainLoop`` picks its data up again.

MMEngine 0.10.7 resumes an iteration-based run at iteration ``n`` by calling
``next()`` on the loop's data iterator ``n`` times: every skipped batch is loaded,
decoded and augmented, only to be thrown away (minutes to hours, at mmseg's 16k-
iteration checkpoints), and the augmentations draw from the RNGs as they go.

:class:`ResumedDataIterator` takes the loop's place. Those ``n`` calls return
nothing. With ``InfiniteSampler`` (mmseg's and mmpretrain's iteration-based
default) the data loader is rebuilt on a batch sampler that skips the first ``n``
batches of indices, which costs no loading; with any other sampler the loop's own
iterator is advanced as MMEngine would. Then, before the first batch is loaded, a
callback runs: ``RngStateHook`` restores the RNG states there, so the batch is
augmented as it was in the uninterrupted run.
"""
import itertools
from typing import Callable, Iterator, Optional

from mmengine.dataset import InfiniteSampler
from torch.utils.data import DataLoader

from ..mmengine_fixes import infinite_iterator

__all__ = ['ResumedDataIterator']


class _SkipBatches:
    """A batch sampler without its first ``skip`` batches."""

    def __init__(self, batch_sampler, skip: int):
        self.batch_sampler = batch_sampler
        self.skip = skip

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.skip, None)

    def __len__(self):
        return len(self.batch_sampler)


def _skipping_loader(loader: DataLoader, skip: int) -> Optional[DataLoader]:
    """``loader`` starting ``skip`` batches in, or None where that cannot be done by
    indices alone (a sampler that ends, so the loop restarts it every epoch)."""
    batch_sampler = getattr(loader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None)
    if not isinstance(sampler, InfiniteSampler):
        return None
    workers = loader.num_workers
    return DataLoader(
        loader.dataset, batch_sampler=_SkipBatches(batch_sampler, skip), num_workers=workers,
        collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers > 0 else None,
        persistent_workers=loader.persistent_workers and workers > 0,
        pin_memory_device=loader.pin_memory_device)


class ResumedDataIterator:
    """The data iterator of an ``IterBasedTrainLoop`` resumed at ``loop.iter``."""

    def __init__(self, loop, before_first_batch: Callable[[], None]):
        self._to_skip = loop.iter
        loader = _skipping_loader(loop.dataloader, loop.iter)
        if loader is not None:
            self._batches: Iterator = infinite_iterator(loader)
        else:
            self._batches = loop.dataloader_iterator
            for _ in range(loop.iter):
                next(self._batches)
        self._before_first_batch: Optional[Callable[[], None]] = before_first_batch

    def __iter__(self):
        return self

    def __next__(self):
        if self._to_skip > 0:  # the loop's own replay of the trained batches
            self._to_skip -= 1
            return None
        if self._before_first_batch is not None:
            self._before_first_batch()
            self._before_first_batch = None
        return next(self._batches)
