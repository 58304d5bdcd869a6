"""mmlion's parts for MMEngine's Runner: the fault-tolerant checkpoint hook
(``type='mmlion.ResumableCheckpointHook'``), the hook that checks the config against
the model, the checkpoint and the metrics as each becomes known
(``type='mmlion.ConfigCheckHook'``), the atomic, stamp-keeping file backend the
checkpoint hook writes with, and the FlexibleRunner's FSDP and DeepSpeed strategies,
fixed for current torch and deepspeed and for CPU-only machines
(``type='mmlion.FSDPStrategy'``, ``type='mmlion.DeepSpeedStrategy'``)."""
from .fileio import AtomicLocalBackend
from .hooks import ConfigCheckHook, ResumableCheckpointHook
from .strategies import DeepSpeedStrategy, FSDPStrategy

__all__ = ['AtomicLocalBackend', 'ConfigCheckHook', 'DeepSpeedStrategy',
           'ResumableCheckpointHook', 'FSDPStrategy']
