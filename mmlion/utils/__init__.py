"""Helpers for mmlion's tools: config checks, distributed set-up, checkpoint loading,
the stamp rule for what mmlion may replace, and the supported versions.

The names below are loaded on first use (PEP 562), so that the bottom modules
(:mod:`.versions`, :mod:`.ownership`) import without MMEngine or the optimizer.
"""
import importlib

_EXPORTS = {
    'ConfigError': 'config_check', 'check_checkpoint': 'config_check',
    'check_config': 'config_check', 'NotOwnedError': 'ownership',
    'allow_mmengine_checkpoints': 'checkpoint', 'dataset_configs': 'data',
    'setup_distributed': 'dist', 'teardown_distributed': 'dist', 'torchrun_restart': 'dist',
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
