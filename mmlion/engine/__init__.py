"""mmlion's parts for MMEngine's Runner: the fault-tolerant checkpoint hook
(``type='mmlion.ResumableCheckpointHook'``), the hook that checks the config against
the model, the checkpoint and the metrics as each becomes known
(``type='mmlion.ConfigCheckHook'``), the atomic, stamp-keeping file backend the
checkpoint hook writes with, and an FSDP strategy for the FlexibleRunner that works
with current torch and on CPU (``type='mmlion.FSDPStrategy'``)."""
from .fileio import AtomicLocalBackend
from .hooks import ConfigCheckHook, ResumableCheckpointHook
from .strategies import FSDPStrategy

__all__ = ['AtomicLocalBackend', 'ConfigCheckHook', 'ResumableCheckpointHook',
           'FSDPStrategy']
