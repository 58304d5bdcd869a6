"""Lion's argument and state-dict checks, kept apart so that ``lion.py`` reads as the
algorithm. Every check raises ``ValueError`` (``TypeError`` for unknown keywords) with
a message that names the key and the value, as torch's optimizers do
(``Invalid learning rate: ...``), and runs before anything is changed.
"""
import math
import numbers
from typing import List, Optional

import torch
from torch import Tensor

__all__ = ['DEFAULTS', 'RUN_OPTIONS', 'validate_group', 'check_initial_lr', 'check_step_values',
           'check_unknown_kwargs', 'check_not_shared', 'check_state_dict', 'loaded_differences',
           'foreign_state_owner', 'sparse_grad_message', 'to_state_dtype']

# Every option of Lion and its default: what ``defaults`` and each param group hold.
# ``__setstate__`` fills options added later into old pickles from here.
DEFAULTS = dict(
    lr=1e-4,
    betas=(0.9, 0.99),
    weight_decay=0.0,
    maximize=False,
    cautious=False,
    decoupled_weight_decay=False,
    state_dtype=None,
    foreach=None,
    fused=None,
    skip_nonfinite=False,
    max_consecutive_skips=10,
    # torch's optimizers all take it, and torch's __setstate__ adds it to ``defaults``
    # (so a deepcopy or an unpickled Lion has it); only False is supported.
    differentiable=False,
)
# Options that decide what a whole step does, so every group must agree on them.
STEP_OPTIONS = ('skip_nonfinite', 'max_consecutive_skips')
# How this run steps, not where training stands: load_state_dict keeps the running
# optimizer's values of these (a checkpoint cannot turn the guard off), where torch's rule
# takes every other group value (lr, betas, weight_decay) from the state dict.
RUN_OPTIONS = ('skip_nonfinite', 'max_consecutive_skips', 'state_dtype', 'foreach', 'fused',
               'differentiable')
# The hyperparameters a resume compares between the checkpoint and the config.
_COMPARED_ON_LOAD = ('lr', 'betas', 'weight_decay')
_STATE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# Keywords of other optimizers that AdamW-to-Lion edits tend to leave behind.
_FOREIGN_KEYS = {
    'eps': " (AdamW's epsilon: Lion divides by nothing, so remove it)",
    'amsgrad': ' (an Adam option: remove it)',
    'momentum': ' (an SGD option: Lion\'s momentum is betas[1])',
    'nesterov': ' (an SGD option: remove it)',
    'dampening': ' (an SGD option: remove it)',
    'use_triton': ' (a lion-pytorch option: mmlion picks its kernel itself)',
    'decoupled_wd': ' (lion-pytorch\'s name: use decoupled_weight_decay)',
    'caution': " (timm's name: use cautious)",
}
# Group keys that mark another optimizer's state dict ('momentum' does not: MMEngine's
# momentum schedulers add it to Lion's groups as beta1).
_FOREIGN_GROUP_KEYS = ('eps', 'amsgrad', 'nesterov', 'dampening')
# State an optimizer other than Lion keeps per parameter, and whose it is.
_FOREIGN_STATE = {
    'exp_avg_sq': 'Adam/AdamW',
    'max_exp_avg_sq': 'Adam/AdamW with amsgrad',
    'momentum_buffer': 'SGD',
    'square_avg': 'RMSprop/Adadelta',
    'sum': 'Adagrad',
    'step': 'a torch optimizer such as AdamW',
}


def _is_number(value) -> bool:
    """A real number, numpy's scalars included (``np.float32(1e-4)``, ``np.int64(0)``,
    as configs built in code often hold them), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_builtin(value):
    """numpy scalars as Python numbers, so that state dicts hold plain values only."""
    if _is_number(value) and type(value) not in (int, float):
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    return value


def _check_lr(lr) -> None:
    if isinstance(lr, Tensor):
        if lr.numel() != 1 or not lr.is_floating_point():
            raise ValueError(
                f'Invalid learning rate: lr must be a float or a one-element float '
                f'Tensor, got a Tensor of shape {tuple(lr.shape)} and dtype {lr.dtype}')
        if lr.device.type != 'cpu':
            return  # reading a device value would sync; the step reads it on the device
        value = float(lr)
    elif _is_number(lr):
        value = float(lr)
    else:
        raise ValueError(f'Invalid learning rate: lr={lr!r} is not a number')
    if not 0.0 <= value < math.inf:  # also refuses NaN
        raise ValueError(f'Invalid learning rate: lr={value} (must be >= 0 and finite)')


def _check_betas(betas) -> None:
    if not isinstance(betas, (tuple, list, Tensor)) and callable(getattr(betas, 'tolist', None)):
        betas = betas.tolist()  # a numpy array
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f'Invalid betas: betas={betas!r} (must be a pair (beta1, beta2))')
    for index, beta in enumerate(betas):
        if not _is_number(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f'Invalid beta parameter at index {index}: betas={tuple(betas)!r} '
                             f'(each beta must be a number in [0, 1))')


def _check_weight_decay(weight_decay) -> None:
    if not _is_number(weight_decay) or not 0.0 <= weight_decay < math.inf:
        raise ValueError(f'Invalid weight_decay value: weight_decay={weight_decay!r} '
                         f'(must be a finite number >= 0)')


def _check_decay_factor(group: dict) -> None:
    """``p *= 1 - lr * weight_decay`` with ``lr * weight_decay >= 1`` zeroes or flips
    every weight at every step (``lr=1e4`` typed for ``1e-4`` does that): refused. With
    decoupled weight decay the factor at the initial lr is ``1 - weight_decay``."""
    lr, weight_decay = group['lr'], group['weight_decay']
    if isinstance(lr, Tensor):
        if lr.device.type != 'cpu':
            return  # reading it would sync with the device
        lr = float(lr)
    product = weight_decay if group['decoupled_weight_decay'] else lr * weight_decay
    if product >= 1:
        what = ('weight_decay (decoupled: the decay at the initial lr is weight_decay)'
                if group['decoupled_weight_decay'] else f'lr * weight_decay = {product:g}')
        raise ValueError(f'Invalid lr and weight_decay: lr={lr!r}, weight_decay={weight_decay!r}: '
                         f'{what} >= 1 would zero or flip the sign of every weight at every '
                         f'step (Lion\'s lr is usually 1e-5 to 1e-3 and lr * weight_decay '
                         f'below 1e-2)')


def _check_flag(key: str, value, allow_none: bool = False) -> None:
    if isinstance(value, bool) or (allow_none and value is None):
        return
    allowed = 'True, False or None' if allow_none else 'True or False'
    raise ValueError(f'Invalid {key}: {key}={value!r} (must be {allowed})')


def check_max_consecutive_skips(value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'Invalid max_consecutive_skips: max_consecutive_skips={value!r} '
                         f'(must be an int >= 1, or None to never stop)')


def to_state_dtype(state_dtype) -> Optional[torch.dtype]:
    """Accept ``torch.bfloat16`` or, from a config file, ``'bfloat16'``."""
    if state_dtype is None or isinstance(state_dtype, torch.dtype):
        dtype = state_dtype
    elif isinstance(state_dtype, str):
        dtype = getattr(torch, state_dtype.replace('torch.', ''), None)
    else:
        dtype = None
    if state_dtype is not None and dtype not in _STATE_DTYPES:
        raise ValueError(f'Invalid state_dtype: state_dtype={state_dtype!r} (must be None or '
                         f'one of float32, float64, float16, bfloat16)')
    return dtype


def validate_group(group: dict) -> None:
    """Check one group's settings; normalise numbers, ``betas`` and ``state_dtype`` in
    place."""
    group['lr'] = _as_builtin(group['lr'])
    group['weight_decay'] = _as_builtin(group['weight_decay'])
    if isinstance(group['betas'], (list, tuple)):
        group['betas'] = tuple(_as_builtin(beta) for beta in group['betas'])
    _check_lr(group['lr'])
    _check_betas(group['betas'])
    _check_weight_decay(group['weight_decay'])
    _check_decay_factor(group)
    if group['differentiable'] is not False:
        raise ValueError(f'Invalid differentiable: differentiable={group["differentiable"]!r} '
                         f'(Lion steps without autograd; only False is supported)')
    for key in ('maximize', 'cautious', 'decoupled_weight_decay', 'skip_nonfinite'):
        _check_flag(key, group[key])
    for key in ('foreach', 'fused'):
        _check_flag(key, group[key], allow_none=True)
    if group['fused'] and group['foreach']:
        raise ValueError('Invalid flags: fused=True and foreach=True cannot both be set')
    check_max_consecutive_skips(group['max_consecutive_skips'])
    group['state_dtype'] = to_state_dtype(group['state_dtype'])


def check_initial_lr(group: dict) -> None:
    """With decoupled weight decay the decay is ``weight_decay * lr / initial_lr``."""
    initial_lr = group.get('initial_lr', group['lr'])
    if isinstance(initial_lr, Tensor) and initial_lr.device.type != 'cpu':
        return  # reading it would sync with the device
    if not (_is_number(initial_lr) or isinstance(initial_lr, Tensor)) or \
            not 0 < float(initial_lr) < math.inf:
        raise ValueError(f'Invalid initial_lr: initial_lr={initial_lr!r} with '
                         f'decoupled_weight_decay=True (the decay is weight_decay * lr / '
                         f'initial_lr, so initial_lr must be > 0 and finite)')


def check_step_values(group: dict, index: int) -> None:
    """A group's lr, betas and weight decay as a step is about to read them, checked as
    the constructor checks them: a scheduler or code may have set them since. The error
    names the group, the key and the value, before any parameter is touched."""
    try:
        _check_lr(group['lr'])
        _check_betas(group['betas'])
        _check_weight_decay(group['weight_decay'])
        _check_decay_factor(group)
        if group['decoupled_weight_decay']:
            check_initial_lr(group)
    except ValueError as error:
        raise ValueError(
            f'Lion, param group {index}: {error}. The value changed after Lion was built: '
            f'a param scheduler set it (e.g. CosineAnnealingLR(eta_min=-1e-2), '
            f'MultiStepLR(gamma=1e4) or MultiStepMomentum(gamma=1.2) drive it out of range) '
            f'or code did; this step changed no parameter') from None


def check_step_options_agree(group: dict, existing: List[dict]) -> None:
    """``skip_nonfinite`` and ``max_consecutive_skips`` decide a whole step at once."""
    if not existing:
        return
    for key in STEP_OPTIONS:
        if group[key] != existing[0][key]:
            raise ValueError(
                f'Invalid {key}: {key}={group[key]!r} in param group {len(existing)} but '
                f'{existing[0][key]!r} in group 0; it decides whether the whole step is '
                f'taken, so every group must have the same value')


def check_unknown_kwargs(unknown: dict) -> None:
    if not unknown:
        return
    key, value = next(iter(unknown.items()))
    hint = _FOREIGN_KEYS.get(key, '')
    raise TypeError(f'Lion got an unexpected keyword argument {key}={value!r}{hint}. '
                    f'Lion takes {", ".join(DEFAULTS)}')


def check_group_keys(group: dict, index: int) -> None:
    """A param group given as a dict may carry any key torch keeps (MMEngine adds
    lr_mult, a scheduler momentum), but not another optimizer's settings, which Lion
    would ignore: the same keys its constructor refuses."""
    for key in _FOREIGN_GROUP_KEYS:
        if key in group:
            raise ValueError(f'Invalid param group {index}: {key}={group[key]!r} is not a '
                             f'Lion setting{_FOREIGN_KEYS[key]}. Lion takes '
                             f'{", ".join(DEFAULTS)}')


def describe_param(p: Tensor) -> str:
    return f'shape {tuple(p.shape)}, dtype {p.dtype}'


def sparse_grad_message(group: dict, index: int, p: Tensor) -> str:
    position = next(i for i, q in enumerate(group['params']) if q is p)
    return (f'Lion does not support sparse gradients: param group {index}, parameter '
            f'{position} ({describe_param(p)}) has a sparse gradient (layout '
            f'{p.grad.layout}); use sparse=False in its embedding or an optimizer for '
            f'sparse gradients')


def check_not_shared(param_group: dict, existing: List[dict]) -> None:
    params = param_group.get('params')
    if isinstance(params, Tensor):
        params = [params]
    if not isinstance(params, (list, tuple)):
        return  # torch's own checks give the error
    new = {id(p): i for i, p in enumerate(params)}
    for index, group in enumerate(existing):
        for p in group['params']:
            if id(p) in new:
                raise ValueError(
                    f'Invalid params: a parameter ({describe_param(p)}) is in param group '
                    f'{index} and again in the new group {len(existing)} (position '
                    f'{new[id(p)]}); each parameter may be in one group only')


def foreign_state_owner(entry: dict) -> Optional[str]:
    """Whose per-parameter state ``entry`` is, when it is not Lion's (None if it is)."""
    other = sorted(k for k in entry if k != 'exp_avg')
    if not other and 'exp_avg' in entry:
        return None
    return next((_FOREIGN_STATE[k] for k in other if k in _FOREIGN_STATE), 'another optimizer')


def check_state_dict(state_dict, param_groups: List[dict]) -> None:
    """Everything torch's load_state_dict assumes, checked before it changes a thing."""
    if not isinstance(state_dict, dict) or 'state' not in state_dict \
            or 'param_groups' not in state_dict:
        keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
        raise ValueError(f'Invalid optimizer state_dict: expected a dict with keys \'state\' '
                         f'and \'param_groups\', got {keys}')
    saved_groups = state_dict['param_groups']
    if len(saved_groups) != len(param_groups):
        raise ValueError(f'Invalid optimizer state_dict: it has {len(saved_groups)} param '
                         f'groups and this Lion has {len(param_groups)}; was it saved for '
                         f'another model or paramwise_cfg?')
    params = []
    for index, (saved, group) in enumerate(zip(saved_groups, param_groups)):
        if len(saved['params']) != len(group['params']):
            raise ValueError(f'Invalid optimizer state_dict: param group {index} has '
                             f'{len(saved["params"])} parameters saved and '
                             f'{len(group["params"])} here')
        foreign = sorted(k for k in saved if k in _FOREIGN_GROUP_KEYS)
        if foreign:
            raise ValueError(f'Invalid optimizer state_dict: param group {index} has the keys '
                             f'{foreign}, which Lion does not use; this state was saved by '
                             f'another optimizer. Resume the model only (load_from=...), '
                             f'not the optimizer')
        params.extend(zip(saved['params'], group['params']))
    saved_state = state_dict['state']
    for saved_id, p in params:
        entry = saved_state.get(saved_id)
        if entry is None:
            continue
        owner = foreign_state_owner(entry)
        if owner is not None:
            raise ValueError(f'Invalid optimizer state_dict: parameter {saved_id} has the state '
                             f'keys {sorted(entry)}, and Lion keeps only [\'exp_avg\']; it was '
                             f'saved by {owner}. Resume the model only (load_from=...), not '
                             f'the optimizer')
        exp_avg = entry['exp_avg']
        if not isinstance(exp_avg, Tensor) or exp_avg.shape != p.shape:
            got = tuple(exp_avg.shape) if isinstance(exp_avg, Tensor) else type(exp_avg)
            raise ValueError(f'Invalid optimizer state_dict: parameter {saved_id} has exp_avg of '
                             f'shape {got}, and the parameter here has shape {tuple(p.shape)}')
        if exp_avg.is_floating_point() or exp_avg.is_complex():
            bad = int((~torch.isfinite(exp_avg)).sum())
            if bad:
                raise ValueError(f'Invalid optimizer state_dict: parameter {saved_id} '
                                 f'({describe_param(p)}) has a momentum (exp_avg) with {bad} '
                                 f'NaN/Inf value(s) of {exp_avg.numel()}: the state was saved '
                                 f'after training diverged, or the file is damaged. Resume '
                                 f'from an earlier checkpoint, or load the model only '
                                 f'(load_from=...)')
    for index, (saved, current) in enumerate(zip(saved_groups, param_groups)):
        group = dict(DEFAULTS)
        group.update({k: v for k, v in current.items() if k != 'params'})
        group.update({k: v for k, v in saved.items() if k != 'params'})
        try:
            validate_group(group)
        except ValueError as e:
            raise ValueError(f'Invalid optimizer state_dict: param group {index}: {e}') from None


def loaded_differences(state_dict: dict, param_groups: List[dict]) -> Optional[str]:
    """One message listing where the state dict's lr (its ``initial_lr``, the config's lr
    before any schedule, where both have one), betas and weight decay differ from these
    groups', or None. Called after :func:`check_state_dict`."""
    lines = []
    for index, (saved, current) in enumerate(zip(state_dict['param_groups'], param_groups)):
        for key in _COMPARED_ON_LOAD:
            name = 'initial_lr' if key == 'lr' and 'initial_lr' in saved and \
                'initial_lr' in current else key
            if name not in saved or isinstance(saved[name], Tensor) or \
                    isinstance(current[name], Tensor):
                continue
            theirs, ours = saved[name], current[name]
            if key == 'betas':
                theirs, ours = tuple(theirs), tuple(ours)
            if theirs != ours:
                lines.append(f'  param group {index}: {name} {theirs!r} in the checkpoint, '
                             f'{ours!r} here')
    if not lines:
        return None
    return ('Lion.load_state_dict: the checkpoint\'s hyperparameters differ from this '
            'optimizer\'s, and the checkpoint\'s are used (torch\'s rule, so that a resumed '
            'schedule goes on where it stopped):\n' + '\n'.join(lines) + '\nTo train with '
            'this config\'s values instead, start from the model only (load_from=... '
            'without resume) or set the values in the param groups after loading.')
