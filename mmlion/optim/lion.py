"""Lion, the EvoLved Sign Momentum optimizer (Chen et al. 2023, arXiv 2302.06675).

The update follows the reference implementation in google/automl (``lion_pytorch.py``)
step for step: decay the weight, step by the sign of an interpolation of momentum and
gradient, then update the momentum. The layout follows ``torch/optim/adamw.py``: the
:class:`Lion` class validates and keeps every setting in its param groups, :func:`lion`
picks an implementation, and ``_single_tensor_lion``, ``_multi_tensor_lion`` and
``_fused_lion`` share one keyword-only signature. Unlike torch's optimizers, the class
batches tensors across param groups whose hyperparameters are equal, because MMEngine's
``paramwise_cfg`` makes one group per parameter.
"""
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from mmlion import _ext
from .nonfinite import (NonFiniteGuard, _check_max_consecutive, load_guard_state,
                        params_with_grads, save_guard_state)

__all__ = ['Lion', 'lion']

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_STATE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# Flags added after the first release; ``__setstate__`` fills them into old pickles.
_FLAG_DEFAULTS = dict(
    maximize=False,
    cautious=False,
    decoupled_weight_decay=False,
    state_dtype=None,
    foreach=None,
    fused=None,
)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_lr(lr) -> None:
    if isinstance(lr, Tensor):
        if lr.numel() != 1 or not lr.is_floating_point():
            raise ValueError(
                f'Invalid learning rate: lr must be a float or a one-element float '
                f'Tensor, got a Tensor of shape {tuple(lr.shape)} and dtype {lr.dtype}')
        value = float(lr)
    elif _is_number(lr):
        value = float(lr)
    else:
        raise ValueError(f'Invalid learning rate: lr={lr!r} is not a number')
    if not value >= 0.0:  # also refuses NaN
        raise ValueError(f'Invalid learning rate: lr={value} (must be >= 0)')


def _check_betas(betas) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f'Invalid betas: betas={betas!r} (must be a pair (beta1, beta2))')
    for index, beta in enumerate(betas):
        if not _is_number(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f'Invalid beta parameter at index {index}: betas={tuple(betas)!r} '
                             f'(each beta must be a number in [0, 1))')


def _check_weight_decay(weight_decay) -> None:
    if not _is_number(weight_decay) or not weight_decay >= 0.0:
        raise ValueError(f'Invalid weight_decay value: weight_decay={weight_decay!r} '
                         f'(must be a number >= 0)')


def _to_state_dtype(state_dtype) -> Optional[torch.dtype]:
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


def _check_flag(key: str, value, allow_none: bool = False) -> None:
    if isinstance(value, bool) or (allow_none and value is None):
        return
    allowed = 'True, False or None' if allow_none else 'True or False'
    raise ValueError(f'Invalid {key}: {key}={value!r} (must be {allowed})')


class Lion(Optimizer):
    r"""Implements the Lion algorithm.

    .. math::
       \begin{aligned}
       &\theta_t \leftarrow \theta_{t-1} (1 - \gamma \lambda) \\
       &c_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
       &\theta_t \leftarrow \theta_t - \gamma \, \mathrm{sign}(c_t) \\
       &m_t \leftarrow \beta_2 m_{t-1} + (1 - \beta_2) g_t
       \end{aligned}

    where :math:`\gamma` is the learning rate, :math:`\lambda` the weight decay,
    :math:`g_t` the gradient (negated with ``maximize``) and :math:`m` the momentum,
    kept in ``state['exp_avg']`` as lion-pytorch and timm keep it, so their state
    dicts load. Lion needs a learning rate 3-10x smaller and a weight decay 3-10x
    larger than AdamW's; ``betas=(0.95, 0.98)`` helps stability.

    Args:
        params (iterable): Parameters or dicts defining param groups.
        lr (float | Tensor): Learning rate. Defaults to 1e-4.
        betas (tuple[float, float]): Interpolation (beta1) and momentum (beta2)
            coefficients, each in [0, 1). Defaults to (0.9, 0.99).
        weight_decay (float): Decoupled weight decay, applied as
            ``p *= 1 - lr * weight_decay``. Defaults to 0.
        maximize (bool): Maximize the objective instead. Defaults to False.
        cautious (bool): Zero the update where its sign disagrees with the
            gradient and rescale the rest by ``1 / mean(mask)`` (Cautious
            Optimizers, Liang et al. 2024, arXiv 2411.16085). Defaults to False.
        decoupled_weight_decay (bool): Scale the weight decay by
            ``lr / initial_lr`` instead of ``lr``, so that it follows the schedule
            but not the size of the learning rate: ``p *= 1 - weight_decay * lr /
            initial_lr``. ``initial_lr`` is the one MMEngine and torch schedulers
            record in each group. Defaults to False.
        state_dtype (torch.dtype | str, optional): dtype of ``exp_avg``, e.g.
            ``torch.bfloat16`` for 2 bytes of state per parameter. The arithmetic
            stays in fp32. Defaults to None (the parameter's dtype).
        foreach (bool, optional): Use the multi-tensor ``torch._foreach_*``
            implementation. Defaults to None (chosen automatically).
        fused (bool, optional): Use the compiled kernel that updates whole
            tensor lists in one call. Defaults to None (chosen automatically:
            fused where the kernel is built for the device).
        skip_nonfinite (bool): Before each step, check every gradient and skip
            the whole step (parameters and ``exp_avg`` untouched) when any
            element is NaN or Inf. Skips are logged and counted in the state
            dict. Defaults to False.
        max_consecutive_skips (int, optional): With ``skip_nonfinite``, raise
            ``FloatingPointError`` after this many skipped steps in a row; None
            never raises. Defaults to 10.

    Example:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(type='Lion', lr=1e-4, weight_decay=0.5),
        ...     paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0))
    """

    def __init__(self,
                 params,
                 lr: Union[float, Tensor] = 1e-4,
                 betas: Tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0,
                 *,
                 maximize: bool = False,
                 cautious: bool = False,
                 decoupled_weight_decay: bool = False,
                 state_dtype: Optional[Union[torch.dtype, str]] = None,
                 foreach: Optional[bool] = None,
                 fused: Optional[bool] = None,
                 skip_nonfinite: bool = False,
                 max_consecutive_skips: Optional[int] = 10,
                 **unknown):
        if unknown:
            key, value = next(iter(unknown.items()))
            hint = _FOREIGN_KEYS.get(key, '')
            raise TypeError(f'Lion got an unexpected keyword argument {key}={value!r}{hint}. '
                            f'Lion takes lr, betas, weight_decay, maximize, cautious, '
                            f'decoupled_weight_decay, state_dtype, foreach, fused, '
                            f'skip_nonfinite and max_consecutive_skips')
        _check_flag('skip_nonfinite', skip_nonfinite)
        _check_max_consecutive(max_consecutive_skips)
        if fused and foreach:
            raise ValueError('Invalid flags: fused=True and foreach=True cannot both be set')
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, list) else betas,
            weight_decay=weight_decay,
            maximize=maximize,
            cautious=cautious,
            decoupled_weight_decay=decoupled_weight_decay,
            state_dtype=state_dtype,
            foreach=foreach,
            fused=fused)
        self._validate_group(defaults)
        # Not a per-group setting: one check covers every gradient of the step.
        self.nonfinite_guard = (NonFiniteGuard(max_consecutive_skips, owner='Lion')
                                if skip_nonfinite else None)
        super().__init__(params, defaults)

    @staticmethod
    def _validate_group(group: dict) -> None:
        """Check one group's settings in place; raise naming the bad key."""
        _check_lr(group['lr'])
        _check_betas(group['betas'])
        _check_weight_decay(group['weight_decay'])
        for key in ('maximize', 'cautious', 'decoupled_weight_decay'):
            _check_flag(key, group[key])
        for key in ('foreach', 'fused'):
            _check_flag(key, group[key], allow_none=True)
        if group['fused'] and group['foreach']:
            raise ValueError('Invalid flags: fused=True and foreach=True cannot both be set')
        group['state_dtype'] = _to_state_dtype(group['state_dtype'])

    def add_param_group(self, param_group: dict) -> None:
        if isinstance(param_group, dict) and self.param_groups:
            _check_not_shared(param_group, self.param_groups)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            if isinstance(group['betas'], list):
                group['betas'] = tuple(group['betas'])
            self._validate_group(group)
            for p in group['params']:
                if p.is_complex() and group['state_dtype'] is not None:
                    raise ValueError(f'Invalid state_dtype: state_dtype={group["state_dtype"]} '
                                     f'is not supported for complex parameters')
        except ValueError:
            # Leave the optimizer as it was before the call.
            self.param_groups.pop()
            raise
        if group['decoupled_weight_decay']:
            lr = group['lr']
            group.setdefault('initial_lr', lr.clone() if isinstance(lr, Tensor) else lr)
            if not float(group['initial_lr']) > 0:
                self.param_groups.pop()
                raise ValueError(
                    f'Invalid initial_lr: initial_lr={float(group["initial_lr"])} with '
                    f'decoupled_weight_decay=True (the decay is weight_decay * lr / '
                    f'initial_lr, so initial_lr must be > 0)')

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state['nonfinite_guard'] = self.nonfinite_guard
        return state

    def __setstate__(self, state: dict) -> None:
        # torch's load_state_dict calls this too, with state and param_groups only.
        if 'nonfinite_guard' not in state and not hasattr(self, 'nonfinite_guard'):
            state['nonfinite_guard'] = None
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in _FLAG_DEFAULTS.items():
                group.setdefault(key, value)

    def state_dict(self) -> dict:
        return save_guard_state(self.nonfinite_guard, super().state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict after checking, before anything changes, that it is
        Lion's and fits these parameters; raise ValueError naming what differs."""
        _check_state_dict(state_dict, self.param_groups)
        super().load_state_dict(load_guard_state(self.nonfinite_guard, state_dict))

    def _init_group(self, group: dict, buckets: Dict[tuple, tuple], index: int) -> None:
        """Gather the group's tensors into the bucket of its hyperparameters."""
        lr = group['lr']
        beta1, beta2 = group['betas']
        initial_lr = group.get('initial_lr', lr) if group['decoupled_weight_decay'] else None
        state_dtype = group['state_dtype']
        key = (lr if not isinstance(lr, Tensor) else id(lr), beta1, beta2,
               group['weight_decay'],
               initial_lr if not isinstance(initial_lr, Tensor) else id(initial_lr),
               group['maximize'], group['cautious'], group['foreach'], group['fused'])
        bucket = buckets.get(key)
        if bucket is None:
            hyper = dict(lr=lr, beta1=beta1, beta2=beta2, weight_decay=group['weight_decay'],
                         initial_lr=initial_lr, maximize=group['maximize'],
                         cautious=group['cautious'], foreach=group['foreach'],
                         fused=group['fused'])
            bucket = buckets[key] = ([], [], [], hyper)
        params, grads, exp_avgs, _ = bucket
        state = self.state
        for p in group['params']:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError(_sparse_message(group, index, p))
            p_state = state[p]
            exp_avg = p_state.get('exp_avg')
            if exp_avg is None:
                exp_avg = p_state['exp_avg'] = torch.zeros_like(
                    p, dtype=state_dtype, memory_format=torch.preserve_format)
            elif state_dtype is not None and exp_avg.dtype != state_dtype:
                # load_state_dict casts state to the param dtype; restore ours.
                exp_avg = p_state['exp_avg'] = exp_avg.to(state_dtype)
            params.append(p)
            grads.append(grad)
            exp_avgs.append(exp_avg)

    @torch.no_grad()
    def step(self, closure=None):
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): Re-evaluates the model and returns the
                loss. Defaults to None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.nonfinite_guard is not None and not self._grads_finite():
            return loss
        buckets: Dict[tuple, tuple] = {}
        for index, group in enumerate(self.param_groups):
            self._init_group(group, buckets, index)
        for params, grads, exp_avgs, hyper in buckets.values():
            if params:
                lion(params, grads, exp_avgs, **hyper)
        return loss

    def _grads_finite(self) -> bool:
        """Run the non-finite guard over every gradient of this step."""
        located = params_with_grads(self.param_groups)
        for index, p in located:  # before the check kernel, which refuses them unclearly
            if p.grad.is_sparse:
                raise RuntimeError(_sparse_message(self.param_groups[index], index, p))
        return self.nonfinite_guard.should_step_params(located)


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


def _describe_param(p: Tensor) -> str:
    return f'shape {tuple(p.shape)}, dtype {p.dtype}'


def _sparse_message(group: dict, index: int, p: Tensor) -> str:
    position = next(i for i, q in enumerate(group['params']) if q is p)
    return (f'Lion does not support sparse gradients: param group {index}, parameter '
            f'{position} ({_describe_param(p)}) has a sparse gradient (layout '
            f'{p.grad.layout}); use sparse=False in its embedding or an optimizer for '
            f'sparse gradients')


def _check_not_shared(param_group: dict, existing: List[dict]) -> None:
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
                    f'Invalid params: a parameter ({_describe_param(p)}) is in param group '
                    f'{index} and again in the new group {len(existing)} (position '
                    f'{new[id(p)]}); each parameter may be in one group only')


def _check_state_dict(state_dict, param_groups: List[dict]) -> None:
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
        other = sorted(k for k in entry if k != 'exp_avg')
        if other or 'exp_avg' not in entry:
            owner = next((_FOREIGN_STATE[k] for k in other if k in _FOREIGN_STATE),
                         'another optimizer')
            raise ValueError(f'Invalid optimizer state_dict: parameter {saved_id} has the state '
                             f'keys {sorted(entry)}, and Lion keeps only [\'exp_avg\']; it was '
                             f'saved by {owner}. Resume the model only (load_from=...), not '
                             f'the optimizer')
        exp_avg = entry['exp_avg']
        if not isinstance(exp_avg, Tensor) or exp_avg.shape != p.shape:
            got = tuple(exp_avg.shape) if isinstance(exp_avg, Tensor) else type(exp_avg)
            raise ValueError(f'Invalid optimizer state_dict: parameter {saved_id} has exp_avg of '
                             f'shape {got}, and the parameter here has shape {tuple(p.shape)}')
    for index, (saved, current) in enumerate(zip(saved_groups, param_groups)):
        group = dict(_FLAG_DEFAULTS)
        group.update({k: v for k, v in current.items() if k != 'params'})
        group.update({k: v for k, v in saved.items() if k != 'params'})
        try:
            Lion._validate_group(group)
        except ValueError as e:
            raise ValueError(f'Invalid optimizer state_dict: param group {index}: {e}') from None


def _decay_amount(lr, weight_decay: float, initial_lr):
    """``lr * wd``, or ``wd * lr / initial_lr`` with decoupled weight decay."""
    if initial_lr is None:
        return lr * weight_decay
    return weight_decay * lr / initial_lr


def _group_tensors(params: List[Tensor], grads: List[Tensor],
                   exp_avgs: List[Tensor]) -> Dict[tuple, Tuple[list, list, list]]:
    """Group by (device, param dtype, state dtype), as foreach and fused need."""
    groups: Dict[tuple, Tuple[list, list, list]] = {}
    for p, g, m in zip(params, grads, exp_avgs):
        key = (p.device, p.dtype, m.dtype)
        lists = groups.get(key)
        if lists is None:
            lists = groups[key] = ([], [], [])
        lists[0].append(p)
        lists[1].append(g)
        lists[2].append(m)
    return groups


def _opmath(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _apply_caution_(update: Tensor, grad: Tensor) -> None:
    """Zero the update where its sign disagrees with the gradient and rescale the
    rest by 1 / max(mean(mask), 1e-3), as timm does (the fused kernel does the same)."""
    mask = (update * grad > 0).to(update.dtype)
    mask.div_(mask.mean().clamp_(min=1e-3))
    update.mul_(mask)


def _single_tensor_lion(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                        lr: Union[float, Tensor], beta1: float, beta2: float,
                        weight_decay: float, initial_lr, maximize: bool, cautious: bool) -> None:
    decay = 1 - _decay_amount(lr, weight_decay, initial_lr)
    for param, grad, exp_avg in zip(params, grads, exp_avgs):
        if param.is_complex():
            param, grad, exp_avg = (torch.view_as_real(param), torch.view_as_real(grad),
                                    torch.view_as_real(exp_avg))
        if maximize:
            grad = -grad
        opmath = _opmath(param.dtype)
        # ``.to`` returns the tensor itself when it is already in op-math precision,
        # so the in-place updates below land directly in the parameter and state.
        p, g, m = param.to(opmath), grad.to(opmath), exp_avg.to(opmath)
        # stepweight decay
        p.mul_(decay)
        # weight update
        update = m.mul(beta1).add_(g, alpha=1 - beta1).sign_()
        if cautious:
            _apply_caution_(update, g)
        if isinstance(lr, Tensor):
            p.sub_(update.mul_(lr))
        else:
            p.add_(update, alpha=-lr)
        # decay the momentum running average coefficient
        m.mul_(beta2).add_(g, alpha=1 - beta2)
        if p is not param:
            param.copy_(p)
        if m is not exp_avg:
            exp_avg.copy_(m)


def _multi_tensor_lion(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                       lr: Union[float, Tensor], beta1: float, beta2: float,
                       weight_decay: float, initial_lr, maximize: bool, cautious: bool) -> None:
    decay = 1 - _decay_amount(lr, weight_decay, initial_lr)
    params, grads, exp_avgs = _as_real(params, grads, exp_avgs)
    for (_, dtype, state_dtype), (ps, gs, ms) in _group_tensors(params, grads,
                                                                 exp_avgs).items():
        opmath = _opmath(dtype)
        if maximize:
            gs = torch._foreach_neg(gs)
        p32 = ps if dtype == opmath else [t.to(opmath) for t in ps]
        g32 = gs if dtype == opmath else [t.to(opmath) for t in gs]
        m32 = ms if state_dtype == opmath else [t.to(opmath) for t in ms]
        # stepweight decay
        if isinstance(decay, Tensor) or decay != 1:
            torch._foreach_mul_(p32, decay)
        # weight update
        updates = torch._foreach_mul(m32, beta1)
        torch._foreach_add_(updates, g32, alpha=1 - beta1)
        torch._foreach_sign_(updates)
        if cautious:
            for update, g in zip(updates, g32):
                _apply_caution_(update, g)
        if isinstance(lr, Tensor):
            torch._foreach_mul_(updates, lr)
            torch._foreach_sub_(p32, updates)
        else:
            torch._foreach_add_(p32, updates, alpha=-lr)
        # decay the momentum running average coefficient
        torch._foreach_mul_(m32, beta2)
        torch._foreach_add_(m32, g32, alpha=1 - beta2)
        if p32 is not ps:
            torch._foreach_copy_(ps, p32)
        if m32 is not ms:
            torch._foreach_copy_(ms, m32)


def _run_kernel(kernel, params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay,
                initial_lr, maximize, cautious) -> bool:
    """One kernel call for the whole list: it handles mixed dtypes, complex and
    non-contiguous tensors itself, and returns False, touching nothing, when some
    tensor is not on the CPU."""
    lr_value = float(lr)
    decay = 1.0 - float(_decay_amount(lr_value, weight_decay, initial_lr))
    return kernel(params, grads, exp_avgs, lr_value, beta1, beta2, decay, maximize, cautious)


def _fused_lion(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                lr: Union[float, Tensor], beta1: float, beta2: float, weight_decay: float,
                initial_lr, maximize: bool, cautious: bool) -> None:
    kernel = _ext.fused_lion_kernel()
    if kernel is None:
        raise RuntimeError(f'fused=True needs the compiled mmlion kernel, which is not '
                           f'available: {_ext.load_error()}')
    if not _run_kernel(kernel, params, grads, exp_avgs, lr=lr, beta1=beta1, beta2=beta2,
                       weight_decay=weight_decay, initial_lr=initial_lr, maximize=maximize,
                       cautious=cautious):
        devices = sorted({str(t.device) for t in (*params, *grads, *exp_avgs)})
        raise RuntimeError(f'fused=True: mmlion has a fused kernel for the CPU only, got '
                           f'tensors on {devices}; use foreach=True')


def _as_real(params, grads, exp_avgs):
    if not any(p.is_complex() for p in params):
        return params, grads, exp_avgs
    as_real = [torch.view_as_real(t) if t.is_complex() else t
               for t in (*params, *grads, *exp_avgs)]
    n = len(params)
    return as_real[:n], as_real[n:2 * n], as_real[2 * n:]


_warned_unbuilt = False


def _warn_unbuilt_once() -> None:
    global _warned_unbuilt
    if not _warned_unbuilt:
        _warned_unbuilt = True
        warnings.warn(f'mmlion: fused Lion kernel not available ({_ext.load_error()}); '
                      f'using the for-loop path. Build it with '
                      f'`pip install -e . --no-build-isolation`.')


def lion(params: List[Tensor],
         grads: List[Tensor],
         exp_avgs: List[Tensor],
         *,
         foreach: Optional[bool] = None,
         fused: Optional[bool] = None,
         lr: Union[float, Tensor],
         beta1: float,
         beta2: float,
         weight_decay: float,
         initial_lr=None,
         maximize: bool = False,
         cautious: bool = False) -> None:
    """Functional API that performs the Lion computation in place.

    See :class:`Lion` for the algorithm. ``initial_lr`` set (not None) means
    decoupled weight decay: the decay is ``weight_decay * lr / initial_lr``.
    """
    hyper = dict(lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                 initial_lr=initial_lr, maximize=maximize, cautious=cautious)
    if fused is None and foreach is None:
        # Fused where the kernel takes the tensors (CPU); else foreach on CUDA, as
        # torch chooses, and the for-loop elsewhere.
        kernel = _ext.fused_lion_kernel()
        if kernel is not None:
            if _run_kernel(kernel, params, grads, exp_avgs, **hyper):
                return
        elif params and params[0].device.type == 'cpu':
            _warn_unbuilt_once()
        foreach = all(p.device.type == 'cuda' for p in params)
    if fused:
        func = _fused_lion
    elif foreach:
        func = _multi_tensor_lion
    else:
        func = _single_tensor_lion
    func(params, grads, exp_avgs, **hyper)
