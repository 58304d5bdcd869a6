"""Helpers for mmlion's tools: distributed set-up and the data the main job needs."""
from .dist import setup_distributed
from .data import prepare_generated_data

__all__ = ['setup_distributed', 'prepare_generated_data']
