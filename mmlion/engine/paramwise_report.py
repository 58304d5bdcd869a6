"""What ``paramwise_cfg`` did to each parameter, as the constructor decided it: a table
for the log, and a warning for each ``custom_keys`` rule that matched nothing.

The numbers come from the config's own constructor (MMEngine's
``DefaultOptimWrapperConstructor`` or a codebase's subclass), asked again for its
param groups (``add_params``), so the table shows what the optimizer got, not a
re-derivation. Only the row a parameter falls in (which rule, or what kind of
parameter it is) follows MMEngine's matching: a ``custom_keys`` key matches when it is
a substring of the parameter's full name, longest key first.
"""
import copy
import difflib
import logging
import re
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch.nn import GroupNorm, LayerNorm
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

__all__ = ['ParamwiseRow', 'paramwise_rows', 'format_table',
           'unmatched_rules', 'report_paramwise']

_NORMS = (_BatchNorm, _InstanceNorm, GroupNorm, LayerNorm)  # MMEngine's "is_norm"
_EXAMPLES = 3


class ParamwiseRow(NamedTuple):
    rule: str            # "custom_keys['backbone']", 'norm', 'bias', ...
    lr_mult: float       # the parameter's lr / the optimizer's lr
    decay_mult: float    # its weight decay / the optimizer's (1 where there is none)
    names: List[str]


def _kind(module: torch.nn.Module, name: str, param: torch.Tensor) -> str:
    if isinstance(module, _NORMS):
        return 'norm'
    if name == 'bias':
        return 'bias'
    if isinstance(module, torch.nn.Conv2d) and module.in_channels == module.groups:
        return 'depth-wise conv'
    return 'one-dimensional' if param.ndim == 1 else 'other'


def _rule_of(matched_name: str, keys: List[str]) -> Optional[str]:
    return next((key for key in keys if key in matched_name), None)


def _parameters(model: torch.nn.Module):
    """(module, name, parameter, the name MMEngine matches ``custom_keys`` against, the
    full name) for each parameter, in model order. MMEngine matches
    ``f'{prefix}.{name}'``, which has a leading dot for the model's own parameters."""
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            yield (module, name, param, f'{prefix}.{name}',
                   f'{prefix}.{name}' if prefix else name)


def _constructor_groups(constructor, model) -> List[dict]:
    """The constructor's param groups for ``model``, its own log quietened (it logs
    each frozen parameter, as it did when the optimizer was built)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        groups: List[dict] = []
        constructor.add_params(groups, model)
        return groups
    finally:
        logger.setLevel(level)


def paramwise_rows(model: torch.nn.Module, optim_wrapper_cfg: dict) -> List[ParamwiseRow]:
    """One row per (rule or kind, lr multiple, decay multiple), in model order; []
    where the config has no ``paramwise_cfg`` (every parameter gets the optimizer's
    settings)."""
    cfg = copy.deepcopy(dict(optim_wrapper_cfg))
    paramwise = cfg.pop('paramwise_cfg', None)
    constructor_type = cfg.pop('constructor', 'DefaultOptimWrapperConstructor')
    if not paramwise:
        return []
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type=constructor_type, optim_wrapper_cfg=cfg, paramwise_cfg=paramwise))
    if not isinstance(constructor, DefaultOptimWrapperConstructor):
        raise TypeError(f'{type(constructor).__name__} is not a DefaultOptimWrapperConstructor')
    groups = {id(g['params'][0]): g for g in _constructor_groups(constructor, model)}
    base_lr, base_wd = constructor.base_lr, constructor.base_wd
    keys = sorted(sorted(paramwise.get('custom_keys') or {}), key=len, reverse=True)
    rows: Dict[Tuple[str, float, float], List[str]] = OrderedDict()
    for module, name, param, matched_name, full_name in _parameters(model):
        group = groups.get(id(param))
        if group is None:
            rule, lr_mult, decay_mult = 'frozen or skipped', 0.0, 0.0
        else:
            key = _rule_of(matched_name, keys)
            rule = f'custom_keys[{key!r}]' if key is not None else _kind(module, name, param)
            lr_mult = group.get('lr', base_lr) / base_lr if base_lr else 1.0
            decay_mult = (group.get('weight_decay', base_wd) / base_wd) if base_wd else 1.0
        rows.setdefault((rule, round(lr_mult, 6), round(decay_mult, 6)), []).append(full_name)
    return [ParamwiseRow(rule, lr, decay, names) for (rule, lr, decay), names in rows.items()]


def format_table(rows: List[ParamwiseRow], optimizer_cfg: dict) -> str:
    head = (f"paramwise_cfg as applied: each parameter's lr and weight decay as multiples "
            f"of the optimizer's (lr={optimizer_cfg.get('lr')}, "
            f"weight_decay={optimizer_cfg.get('weight_decay')})")
    lines = [head, f'{"rule":<34} {"params":>6} {"lr x":>7} {"decay x":>7}  e.g.']
    for row in rows:
        examples = ', '.join(row.names[:_EXAMPLES]) + (', ...' if len(row.names) > _EXAMPLES
                                                        else '')
        lines.append(f'{row.rule:<34} {len(row.names):>6} {row.lr_mult:>7g} '
                     f'{row.decay_mult:>7g}  {examples}')
    return '\n'.join(lines)


def unmatched_rules(model: torch.nn.Module, paramwise_cfg: dict) -> List[str]:
    """A message for each ``custom_keys`` rule that matches no parameter name, with
    the nearest names."""
    names = [(matched, full) for *_, matched, full in _parameters(model)]
    messages = []
    for key in (paramwise_cfg or {}).get('custom_keys') or {}:
        if any(key in matched for matched, _ in names):
            continue
        nearest = _nearest(key, [full for _, full in names])
        messages.append(
            f'optim_wrapper.paramwise_cfg.custom_keys[{key!r}] matches no parameter of '
            f'this model, so it changes nothing (MMEngine matches a key as a substring of '
            f'the full parameter name, not as a regular expression); the nearest names: '
            f'{nearest}')
    return messages


def _nearest(key: str, names: List[str], n: int = 3) -> List[str]:
    """The names sharing most of the key's words (a regex's literal parts), then the
    most alike."""
    words = [w for w in re.split(r'\W+', key) if w]

    def score(name: str):
        return (sum(w in name for w in words),
                difflib.SequenceMatcher(None, key, name).ratio())
    return sorted(names, key=score, reverse=True)[:n]


def report_paramwise(model: torch.nn.Module, optim_wrapper_cfg: dict,
                     logger: Optional[logging.Logger] = None) -> List[ParamwiseRow]:
    """Log the table at INFO and each unmatched rule at WARNING; return the rows."""
    logger = logger or MMLogger.get_current_instance()
    if hasattr(model, 'module'):
        model = model.module  # as the constructor unwraps DDP
    optimizer_cfg = optim_wrapper_cfg.get('optimizer') or {}
    try:
        rows = paramwise_rows(model, optim_wrapper_cfg)
    except Exception as error:  # a report must not stop a run the constructor allowed
        logger.warning(f'mmlion: no paramwise table ({type(error).__name__}: {error})')
        rows = None
    if rows == []:
        count = sum(1 for _ in model.parameters())
        logger.info(f'paramwise_cfg: none; all {count} parameters, norms and biases '
                    f'included, get the optimizer\'s lr and weight decay '
                    f'(weight_decay={optimizer_cfg.get("weight_decay")})')
    elif rows:
        logger.info(format_table(rows, optimizer_cfg))
    for message in unmatched_rules(model, optim_wrapper_cfg.get('paramwise_cfg')):
        logger.warning(message)
    return rows or []
