"""Helpers for mmlion's tools: config checks, distributed set-up and the data the
main job needs."""
from .checkpoint import allow_mmengine_checkpoints
from .config_check import ConfigError, check_checkpoint, check_config
from .data import prepare_generated_data
from .dist import setup_distributed, teardown_distributed

__all__ = [
    'ConfigError', 'allow_mmengine_checkpoints', 'check_checkpoint', 'check_config',
    'prepare_generated_data', 'setup_distributed', 'teardown_distributed'
]
