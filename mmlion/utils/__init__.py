"""Helpers for mmlion's tools: config checks, distributed set-up, checkpoint loading
and the stamp rule for what mmlion may replace."""
from .checkpoint import allow_mmengine_checkpoints
from .config_check import ConfigError, check_checkpoint, check_config
from .data import dataset_configs
from .dist import setup_distributed, teardown_distributed, torchrun_restart
from .ownership import NotOwnedError

__all__ = [
    'ConfigError', 'NotOwnedError', 'allow_mmengine_checkpoints', 'check_checkpoint',
    'check_config', 'dataset_configs', 'setup_distributed', 'teardown_distributed',
    'torchrun_restart'
]
