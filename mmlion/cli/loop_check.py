"""The training loop and the schedulers: settings MMEngine accepts that train nothing,
crash after the first epoch, or leave the lr where it starts. Each is a
:class:`ConfigError` naming the key and the value, before the Runner is built.

- ``train_cfg.max_epochs`` (or ``max_iters``) 0 or below: the run exits 0 having trained
  nothing.
- ``train_cfg.val_interval`` 0 or below with a validation loop: ``ZeroDivisionError`` at
  the end of the first epoch.
- A scheduler that steps by epoch (``by_epoch=True``, the default of MMEngine's
  schedulers) under an iteration-based loop, which ends its one epoch when training
  ends: the lr (or momentum) never moves.
"""
import math

from mmengine.config import Config
from mmengine.registry import LOOPS, PARAM_SCHEDULERS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmlion.engine.known_keys import keyword_default
from mmlion.registry import find_registered
from mmlion.utils.config_error import ConfigError

__all__ = ['check_loops']


def check_loops(cfg: Config) -> None:
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict):
        return
    loop = _train_loop(cfg, train_cfg)
    if loop is None:
        return  # a loop of a codebase's own: its settings are its own
    by_iteration = issubclass(loop, IterBasedTrainLoop)
    length = 'max_iters' if by_iteration else 'max_epochs'
    if length in train_cfg and not _positive(train_cfg[length]):
        raise ConfigError(f'train_cfg.{length}={train_cfg[length]!r} (must be a number > 0: '
                          f'with it the run would train nothing and exit as if it had '
                          f'finished)')
    interval = train_cfg.get('val_interval', 1)
    if _validates(cfg) and not _positive(interval):
        raise ConfigError(
            f'train_cfg.val_interval={interval!r} (must be a number > 0: MMEngine would '
            f'divide by it at the end of the first {"iteration" if by_iteration else "epoch"})'
            f'. To validate never, set val_dataloader, val_cfg and val_evaluator to None')
    if by_iteration:
        _check_schedulers_step(cfg, loop)


def _positive(value) -> bool:
    """A number > 0 (MMEngine compares and divides; mmdet's v3det configs give floats)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and value > 0


def _validates(cfg: Config) -> bool:
    """Whether the Runner builds a validation loop: it needs all three."""
    return all(cfg.get(key) is not None for key in ('val_dataloader', 'val_cfg',
                                                    'val_evaluator'))


def _train_loop(cfg: Config, train_cfg: dict):
    """The loop class the Runner builds from ``train_cfg``, where it is one of
    MMEngine's two (or a subclass); else None."""
    if 'type' in train_cfg:
        loop = find_registered(LOOPS, train_cfg['type'], cfg.get('default_scope'))
    else:
        loop = EpochBasedTrainLoop if train_cfg.get('by_epoch', True) else IterBasedTrainLoop
    if isinstance(loop, type) and issubclass(loop, (EpochBasedTrainLoop, IterBasedTrainLoop)):
        return loop
    return None


def _schedulers(cfg: Config):
    schedulers = cfg.get('param_scheduler')
    if isinstance(schedulers, dict) and 'type' in schedulers:
        return [('param_scheduler', schedulers)]
    if isinstance(schedulers, (list, tuple)):
        return [(f'param_scheduler[{i}]', s) for i, s in enumerate(schedulers)]
    return []  # None, or a dict per optimizer: each its own


def _check_schedulers_step(cfg: Config, loop: type) -> None:
    for key, scheduler in _schedulers(cfg):
        if not isinstance(scheduler, dict) or scheduler.get('convert_to_iter_based'):
            continue  # converted, MMEngine steps it every iteration
        cls = find_registered(PARAM_SCHEDULERS, scheduler.get('type'),
                              cfg.get('default_scope'))
        default = keyword_default(cls, 'by_epoch') if cls is not None else None
        by_epoch = scheduler.get('by_epoch', default)
        if by_epoch is True:
            said = 'by_epoch=True' if 'by_epoch' in scheduler else \
                f'by_epoch defaults to True for {cls.__name__}'
            raise ConfigError(
                f'{key} (type={scheduler.get("type")!r}) steps once per epoch ({said}), but '
                f'train_cfg builds {loop.__name__}, which ends its only epoch when training '
                f'ends: the value it schedules would never change. Set {key}.by_epoch=False '
                f'with begin/end in iterations, or convert_to_iter_based=True')
