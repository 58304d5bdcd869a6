"""mmlion's hooks for MMEngine's Runner, one per file."""
from .config_check_hook import ConfigCheckHook
from .resumable_checkpoint_hook import ResumableCheckpointHook

__all__ = ['ConfigCheckHook', 'ResumableCheckpointHook']
