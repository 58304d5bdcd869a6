"""mmlion's hooks for MMEngine's Runner, one job and one file each."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .config_check_hook import ConfigCheckHook
from .partial_gradient_hook import PartialGradientHook
from .resumable_checkpoint_hook import ResumableCheckpointHook
from .rng_state_hook import RngStateHook
from .sharded_optimizer_hook import ShardedOptimizerHook

__all__ = ['AtomicCheckpointHook', 'ConfigCheckHook', 'PartialGradientHook',
           'ResumableCheckpointHook', 'RngStateHook', 'ShardedOptimizerHook']
