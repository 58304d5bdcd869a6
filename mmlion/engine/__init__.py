"""mmlion's parts for MMEngine's Runner: the fault-tolerant checkpoint hook
(``type='mmlion.ResumableCheckpointHook'``) and the atomic, stamp-keeping file
backend it writes with."""
from .fileio import AtomicLocalBackend, atomic_write, write_owned
from .hooks import ResumableCheckpointHook

__all__ = ['AtomicLocalBackend', 'atomic_write', 'write_owned', 'ResumableCheckpointHook']
