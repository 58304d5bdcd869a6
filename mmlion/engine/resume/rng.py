"""Every RNG a training step may draw from, recorded where training leaves it and
restored before the next training batch is loaded: after a resume, and in an
uninterrupted run too (so validation never shifts the training randomness)."""
import random
from typing import Optional

import numpy as np
import torch

__all__ = ['get_rng_state', 'set_rng_state', 'RngStream']


def get_rng_state() -> dict:
    """Every RNG a training step may draw from, in this process."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class RngStream:
    """This rank's training RNG states: the last snapshot, and what to restore before
    the next training batch."""

    def __init__(self):
        self.snapshot: Optional[dict] = None    # where training last left the RNGs
        self._to_restore: Optional[dict] = None  # restore before the next train batch

    def record(self, restore_next: bool = False) -> None:
        """Snapshot the RNGs now; ``restore_next``: and restore them before the next
        training batch (at an epoch's end, before validation draws from them)."""
        self.snapshot = get_rng_state()
        if restore_next:
            self._to_restore = self.snapshot

    def restore_pending(self) -> None:
        """Restore what :meth:`record` or :meth:`resume_from` set aside, once."""
        if self._to_restore is not None:
            set_rng_state(self._to_restore)
            self._to_restore = None

    def return_to_snapshot(self) -> None:
        """Back to where training left the RNGs (after validation mid-run)."""
        if self.snapshot is not None:
            set_rng_state(self.snapshot)

    def for_checkpoint(self) -> dict:
        return self.snapshot if self.snapshot is not None else get_rng_state()

    def resume_from(self, state: dict) -> None:
        """A checkpoint's states for this rank: restored before the next batch."""
        self.snapshot = self._to_restore = state
