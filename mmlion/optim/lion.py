"""Lion, the EvoLved Sign Momentum optimizer (Chen et al. 2023, arXiv 2302.06675).

The update follows the reference implementation in google/automl (``lion_pytorch.py``)
step for step: decay the weight, step by the sign of an interpolation of momentum and
gradient, then update the momentum. The layout follows ``torch/optim/adamw.py``: the
:class:`Lion` class keeps every setting in its param groups and gathers tensors in
``_init_group``, :func:`lion` picks an implementation once (asking
:mod:`.implementation`, as everything that must agree with it does), and
``_single_tensor_lion``, ``_multi_tensor_lion`` and ``_fused_lion`` share one
keyword-only signature. Argument and state-dict checks live in :mod:`.validation`.
Unlike torch's optimizers, the class batches tensors across param groups whose
hyperparameters are equal, because MMEngine's ``paramwise_cfg`` makes one group per
parameter.
"""
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from mmlion.ops import lion_cpu, lion_triton
from mmlion.ops.common import as_real, as_scalar, decay_factor, layout_key
from mmlion.utils import versions
from .dtensor import DTensor, local_shards
from .implementation import Implementation, resolve, torch_default
from .nonfinite import NonFiniteGuard
from .step_plan import Bucket, StepPlan
from .validation import (DEFAULTS, RUN_OPTIONS, check_group_keys, check_initial_lr,
                         check_not_shared, check_state_dict, check_step_options_agree,
                         check_step_values, check_unknown_kwargs, loaded_differences,
                         sparse_grad_message, validate_group)

__all__ = ['Lion', 'lion']


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
        lr (float | Tensor): Learning rate; a Tensor of one element, of any shape,
            is read where it lives (on CUDA without a host sync). Defaults to 1e-4.
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
            but not the size of the learning rate. ``initial_lr`` is the one
            MMEngine and torch schedulers record in each group. Defaults to False.
        state_dtype (torch.dtype | str, optional): dtype of ``exp_avg``, e.g.
            ``torch.bfloat16`` for 2 bytes of state per parameter. The arithmetic
            stays in fp32. Defaults to None (the parameter's dtype).
        foreach (bool, optional): Use the multi-tensor ``torch._foreach_*``
            implementation. Defaults to None (chosen automatically).
        fused (bool, optional): Use a kernel that updates whole tensor lists in
            one call: the compiled C++ kernel for CPU tensors, a Triton kernel for
            CUDA tensors (reading lr, the GradScaler's ``grad_scale`` and
            ``found_inf`` and the guard's verdict on the device: no host sync).
            With ``fused=True`` a GradScaler hands the unscaling and the skip to the
            step, as it does for torch's fused AdamW. Defaults to None (chosen
            automatically: the C++ kernel where it takes the tensors, else
            foreach on CUDA, until the Triton kernel has been measured on a GPU).
        skip_nonfinite (bool): Before each step, check every gradient and skip
            the whole step (parameters and ``exp_avg`` untouched) when any
            element is NaN or Inf; under ``torch.distributed`` all ranks decide
            together. Skips are logged and counted in the state dict (key
            ``'nonfinite'``). The same in every param group. Defaults to False.
        max_consecutive_skips (int, optional): With ``skip_nonfinite``, raise
            ``FloatingPointError`` after this many skipped steps in a row; None
            never raises. Defaults to 10. On the fused GPU path the guard decides
            and counts on the device, and the limit is checked from a copy of the
            counts that reaches the host without a sync, a step or two later.
        differentiable (bool): Accepted as every torch optimizer accepts it; only
            False is supported (the step runs without autograd). Defaults to False.

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
                 differentiable: bool = False,
                 **unknown):
        check_unknown_kwargs(unknown)
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                        cautious=cautious, decoupled_weight_decay=decoupled_weight_decay,
                        state_dtype=state_dtype, foreach=foreach, fused=fused,
                        skip_nonfinite=skip_nonfinite,
                        max_consecutive_skips=max_consecutive_skips,
                        differentiable=differentiable)
        validate_group(defaults)
        self.nonfinite_guard = NonFiniteGuard(owner='Lion')  # counts, not settings
        self._step_plan: Optional[StepPlan] = None
        self._values_checked: Dict[int, tuple] = {}  # see _check_step_values
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        self._step_plan = None
        if isinstance(param_group, dict) and self.param_groups:
            check_not_shared(param_group, self.param_groups)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:  # leave the optimizer as it was before the call
            check_group_keys(group, len(self.param_groups) - 1)
            validate_group(group)
            check_step_options_agree(group, self.param_groups[:-1])
            check_installed_versions(group)
            if group['state_dtype'] is not None and any(p.is_complex() for p in group['params']):
                raise ValueError(f'Invalid state_dtype: state_dtype={group["state_dtype"]} '
                                 f'is not supported for complex parameters')
            if group['decoupled_weight_decay']:
                lr = group['lr']
                group.setdefault('initial_lr', lr.clone() if isinstance(lr, Tensor) else lr)
                check_initial_lr(group)
        except ValueError:
            self.param_groups.pop()
            raise

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__(), nonfinite_guard=self.nonfinite_guard)
        state.pop('_step_plan', None)  # references to this optimizer's own tensors
        state.pop('_values_checked', None)
        return state

    def __setstate__(self, state: dict) -> None:
        state['_step_plan'] = None
        state['_values_checked'] = {}
        # Pickles from before an option existed lack it: fill in its default.
        state.setdefault('nonfinite_guard', getattr(self, 'nonfinite_guard', None)
                         or NonFiniteGuard(owner='Lion'))
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in DEFAULTS.items():
                group.setdefault(key, value)

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """Whether a GradScaler hands this step its ``grad_scale`` and ``found_inf``
        instead of unscaling itself: when every group asked for the fused
        implementation, as for torch's fused AdamW."""
        return self._fused_implementation() is not None

    def state_dict(self) -> dict:
        """torch's state dict, with ``state_dtype`` as its name ('bfloat16'): only
        plain values, as torch.distributed.checkpoint (FSDP2's full and sharded state
        dicts) requires."""
        state_dict = super().state_dict()
        for group in state_dict['param_groups']:  # copies, not our groups
            if isinstance(group.get('state_dtype'), torch.dtype):
                group['state_dtype'] = str(group['state_dtype']).replace('torch.', '')
        if self.param_groups[0]['skip_nonfinite']:
            self.nonfinite_guard.save_into(state_dict)
        return state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict after checking, before anything changes, that it is
        Lion's and fits these parameters; raise ValueError naming what differs.

        As in torch, the hyperparameters (lr, betas, weight decay) come from the state
        dict; one warning lists those that differ from this optimizer's. mmlion's own
        options, which are not training state (:data:`~.validation.RUN_OPTIONS`:
        ``skip_nonfinite``, ``state_dtype``, ``foreach``, ...), stay as this optimizer
        was built: a checkpoint cannot turn the guard off."""
        check_state_dict(state_dict, self.param_groups)
        differences = loaded_differences(state_dict, self.param_groups)
        options = [{key: group[key] for key in RUN_OPTIONS} for group in self.param_groups]
        self._step_plan = None  # new groups and momenta
        super().load_state_dict(self.nonfinite_guard.load_from(state_dict))
        for group, kept in zip(self.param_groups, options):
            group.update(kept)
        if differences:
            warnings.warn(differences, stacklevel=2)

    def _init_group(self, group: dict, index: int, bucket: tuple) -> None:
        """Append the group's parameters with gradients, their gradients and their
        momenta (created lazily) to the bucket's lists."""
        params, grads, exp_avgs, _ = bucket
        state_dtype = group['state_dtype']
        state = self.state
        for p in group['params']:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError(sparse_grad_message(group, index, p))
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
    def step(self, closure=None, *, skip_if: Optional[Tensor] = None):
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): Re-evaluates the model and returns the
                loss. Defaults to None.
            skip_if (Tensor, optional): A one-element flag (a guard's verdict, see
                :meth:`guards_on_device`): nonzero, the step changes nothing. The
                fused GPU kernel reads it on the device. Defaults to None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        # Set by a GradScaler for this step when _step_supports_amp_scaling (fused=True).
        grad_scale = getattr(self, 'grad_scale', None)
        found_inf = getattr(self, 'found_inf', None)
        if skip_if is not None:
            found_inf = skip_if if found_inf is None else (found_inf != 0) | (skip_if != 0)
        if first['skip_nonfinite']:
            located = self._located_grads()
            if located and self.guards_on_device():
                found_inf = self.nonfinite_guard.skip_flag_on_device(
                    [p.grad for _, p in located], first['max_consecutive_skips'],
                    found_inf=found_inf)
            elif found_inf is not None and bool(found_inf):
                return loss  # the GradScaler's overflow, not the guard's to count
            elif not self._guard_allows_step(located, first['max_consecutive_skips']):
                return loss
        plan = self._step_plan
        buckets = plan.reuse(self.param_groups, self.state) if plan is not None else None
        if buckets is None:  # (the plan holds no sparse gradient: _init_group refuses them)
            buckets = self._plan_buckets()
        self._check_step_values(buckets)
        for bucket in _refusals_first(buckets):
            lion(bucket.params, bucket.grads, bucket.exp_avgs, **bucket.hyperparameters,
                 grad_scale=grad_scale, found_inf=found_inf, host_plan=bucket.host_plan)
        return loss

    def _check_step_values(self, buckets: List[Bucket]) -> None:
        """Each bucket's lr, betas and weight decay, as this step is about to read them,
        checked as the constructor checks them wherever they changed since they were last
        checked (a scheduler, or code, sets them after construction), before any
        parameter is touched. Every group of a bucket has its leader's values."""
        checked = self._values_checked
        for bucket in buckets:
            hyper = bucket.hyperparameters
            values = (hyper['lr'], hyper['initial_lr'], hyper['beta1'], hyper['beta2'],
                      hyper['weight_decay'])
            plain = all(type(value) in _PLAIN_NUMBERS for value in values)
            if plain and checked.get(bucket.leader) == values:
                continue  # (only plain numbers are compared: a Tensor's == is no bool)
            check_step_values(self.param_groups[bucket.leader], bucket.leader)
            if plain:
                checked[bucket.leader] = values

    def _plan_buckets(self) -> List[Bucket]:
        """This step's buckets of groups with equal hyperparameters, built by a loop over
        every group (creating momenta on the first step), and recorded as a
        :class:`StepPlan` that the next steps reuse while it holds."""
        buckets: Dict[tuple, tuple] = {}
        members: Dict[tuple, List[int]] = {}
        for index, group in enumerate(self.param_groups):
            key = _bucket_key(group)
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = ([], [], [], _hyperparameters(group))
                members[key] = []
            members[key].append(index)
            self._init_group(group, index, bucket)
        keys = [key for key, bucket in buckets.items() if bucket[0]]
        plan = self._step_plan = StepPlan.record(
            self.param_groups, self.state, [members[k] for k in keys],
            [(buckets[k][0], buckets[k][2]) for k in keys], _hyperparameters,
            fixed_keys=tuple(k for k, how in STEP_KEYS.items() if how is FIXED),
            scheduled_keys=tuple(k for k, how in STEP_KEYS.items() if how is SCHEDULED))
        host_plans = plan.host_plans() if plan is not None else [None] * len(keys)
        return [Bucket(members[k][0], *buckets[k], host_plan)
                for k, host_plan in zip(keys, host_plans)]

    def _fused_implementation(self) -> Optional[Implementation]:
        """The implementation (:mod:`.implementation`) when every group asked for
        ``fused=True`` and they all resolve alike, else None; a group without it answers
        at once (this runs every step, over thousands of paramwise groups)."""
        if not all(group['fused'] for group in self.param_groups):
            return None
        found = None
        for group in self.param_groups:
            if not group['params']:
                continue
            resolved = resolve(group['params'][0].device, group['foreach'], group['fused'])
            if found is not None and resolved != found:
                return None
            found = resolved
        return found

    def guards_on_device(self) -> bool:
        """True when the step runs the fused GPU kernel, which skips on a flag on the
        device: a guard then hands it its verdict as ``step(skip_if=flag)`` instead of
        deciding on the host (no sync)."""
        implementation = self._fused_implementation()
        return implementation is not None and implementation.on_device

    def _located_grads(self) -> List[tuple]:
        """(group index, parameter) for every parameter with a gradient; a sparse
        gradient is an error naming its group."""
        located = [(index, p) for index, group in enumerate(self.param_groups)
                   for p in group['params'] if p.grad is not None]
        for index, p in located:
            if p.grad.is_sparse:
                raise RuntimeError(sparse_grad_message(self.param_groups[index], index, p))
        return located

    def _guard_allows_step(self, located: List[tuple],
                           max_consecutive_skips: Optional[int]) -> bool:
        """The non-finite guard over every gradient, before any state is touched."""
        def describe(position: int) -> str:
            index, p = located[position]
            return f'param group {index}, parameter of shape {tuple(p.shape)}'

        return self.nonfinite_guard.should_step([p.grad for _, p in located],
                                                max_consecutive_skips, describe=describe)


def _refusals_first(buckets: List[Bucket]) -> List[Bucket]:
    """The buckets in the order that makes a refused step touch nothing: ``fused=True``
    raises on tensors its kernel cannot address (a lazy conjugate or negative view, a
    subclass), after checking a bucket but before writing it, so the buckets holding such
    tensors go first. Buckets hold disjoint parameters: their order changes no result."""
    if len(buckets) < 2 or not any(b.hyperparameters['fused'] for b in buckets):
        return buckets
    return sorted(buckets, key=lambda b: not b.hyperparameters['fused'] or
                  layout_key(b.params, b.grads, b.exp_avgs) is not None)


def check_installed_versions(group: dict) -> None:
    """Refuse, at construction, what the installed torch or Triton cannot do with this
    group's parameters, naming the version found and the version needed."""
    params = group['params']
    if any(isinstance(p, DTensor) for p in params):
        versions.require('Lion with DTensor parameters (FSDP2 fully_shard, tensor '
                         'parallelism)', 'torch', versions.torch_version(),
                         versions.SUPPORTED['fsdp2_torch'])
    if group['fused'] and any(lion_triton.runs_on(p.device) for p in params) \
            and not lion_triton.available():
        raise RuntimeError(f'fused=True with parameters on '
                           f'{next(p.device for p in params if lion_triton.runs_on(p.device))}: '
                           f'{lion_triton.load_error()}; use foreach=True (the CUDA default)')


# Every param-group key a step reads besides 'params', and how a StepPlan holds it
# between steps: FIXED keys must keep the values recorded, SCHEDULED ones (which a
# scheduler changes every step) must equal those of the bucket's first group, from which
# the step reads them afresh. The bucket key is these keys' values, _hyperparameters reads
# no other key, and the plan checks exactly these: a key added here is bucketed, read and
# checked alike. (skip_nonfinite and max_consecutive_skips are read from group 0 by
# every step, outside the buckets.)
FIXED, SCHEDULED = 'fixed', 'scheduled'
STEP_KEYS = dict(lr=SCHEDULED, initial_lr=SCHEDULED, betas=FIXED, weight_decay=FIXED,
                 decoupled_weight_decay=FIXED, maximize=FIXED, cautious=FIXED,
                 foreach=FIXED, fused=FIXED, state_dtype=FIXED)
_ABSENT = object()  # a STEP_KEYS key the group does not have (initial_lr, before a scheduler)
_ATOMS = frozenset((float, int, bool, str, type(None), torch.dtype))
_PLAIN_NUMBERS = (float, int, type(None))


def _hyperparameters(group: dict) -> dict:
    """What :func:`lion` takes from a param group (reading only :data:`STEP_KEYS`)."""
    beta1, beta2 = group['betas']
    return dict(lr=group['lr'], beta1=beta1, beta2=beta2, weight_decay=group['weight_decay'],
                initial_lr=(group.get('initial_lr', group['lr']) if group['decoupled_weight_decay']
                            else None),
                maximize=group['maximize'], cautious=group['cautious'],
                foreach=group['foreach'], fused=group['fused'])


def _bucket_key(group: dict) -> tuple:
    """Groups share one call only where every :data:`STEP_KEYS` value is equal."""
    return tuple(_hashable(group.get(key, _ABSENT)) for key in STEP_KEYS)


def _hashable(value):
    """A value as a bucket key holds it: lists, tuples and numpy values by their items
    (a list mutated later does not change the key), Tensors by identity (an lr Tensor is
    read where it lives, by the step), what cannot be hashed by identity."""
    if type(value) in _ATOMS or value is _ABSENT:
        return value
    if isinstance(value, Tensor):
        return (Tensor, id(value))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(map(_hashable, value)))
    tolist = getattr(value, 'tolist', None)  # numpy scalars and arrays
    if callable(tolist):
        return (type(value), _hashable(tolist()))
    try:
        hash(value)
    except TypeError:
        return (object, id(value))
    return value


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
    lr, initial_lr = as_scalar(lr), as_scalar(initial_lr)
    decay = decay_factor(lr, weight_decay, initial_lr)
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
    lr, initial_lr = as_scalar(lr), as_scalar(initial_lr)
    decay = decay_factor(lr, weight_decay, initial_lr)
    params, grads, exp_avgs = as_real(params, grads, exp_avgs)
    for dtype, (ps, gs, ms) in _group_by_device_and_dtypes(params, grads, exp_avgs):
        opmath = _opmath(dtype)
        if maximize:
            gs = torch._foreach_neg(gs)
        # Low-precision params and state (bf16 exp_avg) compute in op-math copies.
        p32 = ps if dtype == opmath else [t.to(opmath) for t in ps]
        g32 = gs if dtype == opmath else [t.to(opmath) for t in gs]
        m32 = [t.to(opmath) for t in ms]
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
        for m, m_opmath in zip(ms, m32):
            if m_opmath is not m:
                m.copy_(m_opmath)


def _group_by_device_and_dtypes(params: List[Tensor], grads: List[Tensor],
                                exp_avgs: List[Tensor]) -> List[tuple]:
    """``(param dtype, (params, grads, exp_avgs))`` per device, param dtype and state
    dtype: each foreach call then sees one dtype per list. (torch's private
    ``_group_tensors_by_device_and_dtype`` refuses lists whose dtypes differ by index,
    as bf16 state beside fp32 params does, before torch 2.2.)"""
    groups: Dict[tuple, tuple] = {}
    for p, g, m in zip(params, grads, exp_avgs):
        key = (p.device, p.dtype, m.dtype)
        lists = groups.get(key)
        if lists is None:
            lists = groups[key] = ([], [], [])
        lists[0].append(p)
        lists[1].append(g)
        lists[2].append(m)
    return [(key[1], lists) for key, lists in groups.items()]


def _fused_lion(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                lr: Union[float, Tensor], beta1: float, beta2: float, weight_decay: float,
                initial_lr, maximize: bool, cautious: bool) -> bool:
    """The C++ kernel over the whole list (the Triton one is called from :func:`lion`,
    which hands it the GradScaler's flags); it handles mixed dtypes, complex and
    non-contiguous CPU tensors itself. False, having touched nothing, when it cannot
    take one of the tensors."""
    if not lion_cpu.available():
        raise RuntimeError(f'fused=True needs the compiled mmlion kernel, which is not '
                           f'available: {lion_cpu.load_error()}')
    return lion_cpu.fused_lion_(params, grads, exp_avgs, lr=lr, beta1=beta1, beta2=beta2,
                                weight_decay=weight_decay, initial_lr=initial_lr,
                                maximize=maximize, cautious=cautious)


def _unscale_or_skip(grads: List[Tensor], grad_scale: Optional[Tensor],
                     found_inf: Optional[Tensor]) -> bool:
    """GradScaler's contract with optimizers that take its ``grad_scale`` and
    ``found_inf`` (``_step_supports_amp_scaling``), for the implementations that do
    not read them on the device: False (skip) when ``found_inf`` is set, else the
    gradients unscaled in place, as ``GradScaler.unscale_`` leaves them."""
    if found_inf is not None and bool(found_inf):
        return False
    if grad_scale is not None:
        torch._foreach_div_(grads, grad_scale.reshape(()))
    return True


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
         cautious: bool = False,
         grad_scale: Optional[Tensor] = None,
         found_inf: Optional[Tensor] = None,
         host_plan: Optional[dict] = None) -> None:
    """Functional API that performs the Lion computation in place.

    See :class:`Lion` for the algorithm. ``initial_lr`` set (not None) means
    decoupled weight decay: the decay is ``weight_decay * lr / initial_lr``.
    ``grad_scale`` and ``found_inf`` are a GradScaler's (as for torch's fused
    AdamW): the gradients are divided by ``grad_scale``, and nothing changes when
    ``found_inf`` is nonzero; the GPU kernel reads both on the device. ``host_plan``: a
    dict a caller keeps for the same lists across steps, where the GPU kernel keeps its
    checks and pointer tables (:func:`mmlion.ops.lion_triton.fused_lion_`).
    """
    hyper = dict(lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                 initial_lr=initial_lr, maximize=maximize, cautious=cautious)
    if not params:
        return
    if isinstance(params[0], DTensor):
        params, grads, exp_avgs = local_shards(params, grads, exp_avgs, cautious)
    implementation = resolve(params[0].device, foreach, fused, params)
    if implementation.on_device:
        lion_triton.fused_lion_(params, grads, exp_avgs, **hyper,
                                grad_scale=grad_scale, found_inf=found_inf,
                                host_plan=host_plan)
        return
    if (grad_scale is not None or found_inf is not None) and not _unscale_or_skip(
            grads, grad_scale, found_inf):
        return
    if implementation.name == 'fused':
        if _fused_lion(params, grads, exp_avgs, **hyper):
            return
        if not implementation.automatic:
            untaken = lion_cpu.describe_untaken([*params, *grads, *exp_avgs])
            raise RuntimeError(f'fused=True: mmlion has fused kernels for plain CPU tensors '
                               f'and (with Triton) CUDA tensors, got {untaken}; use '
                               f'foreach=True')
        implementation = torch_default(params)  # the automatic choice, handed back
    func = _multi_tensor_lion if implementation.name == 'foreach' else _single_tensor_lion
    func(params, grads, exp_avgs, **hyper)
