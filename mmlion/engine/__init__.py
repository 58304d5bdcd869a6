"""mmlion's parts for MMEngine's Runner: fault-tolerant checkpointing and the
non-finite-gradient hook (``type='mmlion.ResumableCheckpointHook'``,
``type='mmlion.NonFiniteGradHook'``)."""
from .fileio import AtomicLocalBackend, atomic_write
from .hooks import NonFiniteGradHook, ResumableCheckpointHook

__all__ = ['AtomicLocalBackend', 'atomic_write', 'NonFiniteGradHook', 'ResumableCheckpointHook']
