"""``ConfigCheckHook``: checks the config against what the run holds, as each part
becomes known, and says what it finds before it costs a step.

- **Before the run** (the optimizer is built): the table of what ``paramwise_cfg``
  did, at INFO, and a WARNING for each ``custom_keys`` rule that matches no parameter
  (:mod:`mmlion.engine.paramwise_report`).
- **A checkpoint loaded** (``load_from`` or a resume): a NaN or Inf weight is an error
  naming the file and the first such tensor; a resume into a model whose parameters
  differ from the checkpoint's names those missing and extra, before the optimizer
  state fails to fit.
- **The first validation**: each ``save_best`` of a checkpoint hook must be a metric
  the evaluator reported; the error lists those it did.

``tools/train.py`` adds it to every run; in another codebase's tools, add
``dict(type='mmlion.ConfigCheckHook')`` to ``custom_hooks``. The config checks that need
no model (unknown keys, values) are :func:`mmlion.cli.check_config`'s.
"""
from typing import List, Optional

import torch
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import find_latest_checkpoint

from mmlion.registry import HOOKS
from mmlion.utils.checkpoint import first_nonfinite
from mmlion.utils.config_error import ConfigError, did_you_mean
from ..paramwise_report import report_paramwise
from ..resume.partial_gradients import optim_wrappers

__all__ = ['ConfigCheckHook']
_SHOWN = 5  # names listed in a message


def _listed(names: List[str]) -> str:
    more = f' and {len(names) - _SHOWN} more' if len(names) > _SHOWN else ''
    return ', '.join(names[:_SHOWN]) + more


def _whole(state_dict) -> bool:
    """Whether ``state_dict`` is a model's whole state dict, plain tensors by name (not
    a strategy's shards: FSDP's local ShardedTensors and flat parameters)."""
    return isinstance(state_dict, dict) and all(
        type(value) in (torch.Tensor, torch.nn.Parameter) for value in state_dict.values())


@HOOKS.register_module()
class ConfigCheckHook(Hook):
    """See the module. Runs first (``VERY_HIGH``): before a checkpoint hook reads the
    loaded checkpoint or the validation metrics."""

    priority = 'VERY_HIGH'

    def __init__(self):
        self._metrics_checked = False

    def before_run(self, runner) -> None:
        optim_wrapper = runner.cfg.get('optim_wrapper')
        if isinstance(optim_wrapper, dict) and 'optimizer' in optim_wrapper:
            report_paramwise(runner.model, optim_wrapper, runner.logger)
        _check_sharded_state_is_gathered(runner)

    # -- a checkpoint loaded --------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state_dict = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
        if not _whole(state_dict):
            return  # a strategy's own format (DeepSpeed, sharded FSDP): its own checks
        resuming = bool(getattr(runner, '_resume', False))
        path = self._loaded_path(runner, resuming)
        key = 'resume' if resuming else 'load_from'
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parameters = [name for name, _ in model.named_parameters()]
        found = first_nonfinite(state_dict, set(parameters))
        if found is not None:
            name, bad, size = found
            raise ConfigError(
                f'{key}: checkpoint {path!r} holds non-finite weights: {name!r} has {bad} '
                f'NaN/Inf values of {size}. Training from it would skip or diverge from the '
                f'first step; pick an earlier checkpoint')
        if resuming:
            self._check_names(parameters, model.state_dict(), state_dict, path)

    @staticmethod
    def _loaded_path(runner, resuming: bool) -> Optional[str]:
        """The file the Runner loads, found as ``Runner.load_or_resume`` finds it."""
        load_from = getattr(runner, '_load_from', None)
        if resuming and load_from is None:
            return find_latest_checkpoint(runner.work_dir)
        return load_from

    @staticmethod
    def _check_names(parameters: List[str], own: dict, state_dict: dict,
                     path: Optional[str]) -> None:
        """``parameters`` and ``own`` (the model's names and state dict) against the
        checkpoint's ``state_dict``."""
        missing = [name for name in parameters if name not in state_dict]
        extra = [name for name in state_dict if name not in own]
        if not missing and not extra:
            return
        parts = []
        if missing:
            parts.append(f'{len(missing)} parameters of this model are not in it '
                         f'({_listed(missing)})')
        if extra:
            parts.append(f'{len(extra)} of its tensors are not in this model '
                         f'({_listed(extra)})')
        raise ConfigError(
            f'resume: checkpoint {path!r} was saved from another model: '
            f'{"; ".join(parts)}. Resuming needs the same parameters (the optimizer state '
            f'is per parameter); to start from its weights where they fit, use '
            f'load_from={path!r} with resume=False')

    # -- the first validation -------------------------------------------------------
    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        if self._metrics_checked or not metrics:
            return
        self._metrics_checked = True
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook) or hook.save_best is None:
                continue
            wanted = hook.save_best if isinstance(hook.save_best, list) else [hook.save_best]
            for name in wanted:
                if name != 'auto' and name not in metrics:
                    raise ConfigError(
                        f'{type(hook).__name__}: save_best={name!r} is not a metric this '
                        f'run\'s evaluator reports{did_you_mean(name, metrics) or "."} It '
                        f'reports {sorted(metrics)}')


def _check_sharded_state_is_gathered(runner) -> None:
    """A ZeRO-sharded optimizer saved by a checkpoint hook needs ShardedOptimizerHook
    (which ResumableCheckpointHook adds), or its first checkpoint raises: say so now."""
    from .resumable_checkpoint_hook import ResumableCheckpointHook
    from .sharded_optimizer_hook import ShardedOptimizerHook
    sharded = [type(w.optimizer).__name__ for w in optim_wrappers(runner)
               if hasattr(w.optimizer, 'consolidate_state_dict')]
    hooks = runner.hooks
    if sharded and any(isinstance(h, CheckpointHook) for h in hooks) and not any(
            isinstance(h, (ShardedOptimizerHook, ResumableCheckpointHook)) for h in hooks):
        raise ConfigError(
            f'optim_wrapper.optimizer is a sharded {sharded[0]}, whose state rank 0 can '
            f'save only once every rank has gathered it; add custom_hooks=[dict(type='
            f"'mmlion.ShardedOptimizerHook')] (or use mmlion.ResumableCheckpointHook, "
            f'which adds it), or the first checkpoint fails')
