"""mmlion's parts for MMEngine's Runner: hooks with one job each (checkpoints written
atomically, ``type='mmlion.AtomicCheckpointHook'``; training's RNG states,
``mmlion.RngStateHook``; the gradient of an unfinished accumulation window,
``mmlion.PartialGradientHook``; a ZeRO optimizer's shards gathered before each
checkpoint, ``mmlion.ShardedOptimizerHook``; the four in one line,
``mmlion.ResumableCheckpointHook``; the config checked against the model, the
checkpoint and the metrics as each becomes known, ``mmlion.ConfigCheckHook``), the
atomic, stamp-keeping file backend the checkpoint hook writes with, and the
FlexibleRunner's FSDP and DeepSpeed strategies, fixed for current torch and deepspeed and
for CPU-only machines (``type='mmlion.FSDPStrategy'``, ``type='mmlion.DeepSpeedStrategy'``)."""
from .fileio import AtomicLocalBackend
from .hooks import (AtomicCheckpointHook, ConfigCheckHook, PartialGradientHook,
                    ResumableCheckpointHook, RngStateHook, ShardedOptimizerHook)
from .strategies import DeepSpeedStrategy, FSDPStrategy

__all__ = ['AtomicCheckpointHook', 'AtomicLocalBackend', 'ConfigCheckHook',
           'DeepSpeedStrategy', 'FSDPStrategy', 'PartialGradientHook',
           'ResumableCheckpointHook', 'RngStateHook', 'ShardedOptimizerHook']
