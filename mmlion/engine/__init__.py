"""mmlion's parts for MMEngine's Runner: the fault-tolerant checkpoint hook
(``type='mmlion.ResumableCheckpointHook'``), the atomic, stamp-keeping file backend
it writes with, and an FSDP strategy for the FlexibleRunner that works with current
torch and on CPU (``type='mmlion.FSDPStrategy'``)."""
from .fileio import AtomicLocalBackend
from .hooks import ResumableCheckpointHook
from .strategies import FSDPStrategy

__all__ = ['AtomicLocalBackend', 'ResumableCheckpointHook',
           'FSDPStrategy']
