"""Helpers for mmlion's tools: distributed set-up and the data the main job needs."""
from .checkpoint import allow_mmengine_checkpoints
from .data import prepare_generated_data
from .dist import setup_distributed

__all__ = ['allow_mmengine_checkpoints', 'prepare_generated_data', 'setup_distributed']
