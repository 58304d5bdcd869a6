"""mmlion's hooks for MMEngine's Runner, one per file."""
from .resumable_checkpoint_hook import ResumableCheckpointHook

__all__ = ['ResumableCheckpointHook']
