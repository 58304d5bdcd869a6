"""Lion, the EvoLved Sign Momentum optimizer (Chen et al. 2023, arXiv 2302.06675).

The update follows the reference implementation in google/automl (``lion_pytorch.py``)
step for step: decay the weight, step by the sign of an interpolation of momentum and
gradient, then update the momentum. The layout follows ``torch/optim/adamw.py``: the
:class:`Lion` class keeps every setting in its param groups and gathers tensors in
``_init_group``; the update itself, one function per implementation sharing one
keyword-only signature, is in :mod:`.functional`; which one runs is decided in
:mod:`.implementation`. Argument and state-dict checks live in :mod:`.validation`.

Unlike torch's optimizers, the class batches tensors across param groups whose
hyperparameters are equal, because MMEngine's ``paramwise_cfg`` makes one group per
parameter, and it decides each batch's implementation once, when it builds its step
plan (:mod:`.step_plan`). From :meth:`Lion.step` to the math: ``step`` ->
``_run_buckets`` -> ``multi_tensor_lion`` (or the C++ or Triton kernel's launcher).
"""
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer

from mmlion.ops import lion_triton
from mmlion.utils import versions
from .dtensor import DTensor
from .implementation import choose, hands_amp_scaling_to_step, reads_flags_on_device
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
        self._decide_step_hand_overs()

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
        self._decide_step_hand_overs()

    def _decide_step_hand_overs(self) -> None:
        """What a GradScaler and a guard ask before each step, decided as groups are added
        (:mod:`.implementation`): whether the scaler hands the step its ``grad_scale``
        and ``found_inf`` (torch's name for it), and whether the guard hands it a device
        flag. Every implementation honours both ways: these choose the faster one."""
        self._step_supports_amp_scaling = hands_amp_scaling_to_step(self.param_groups)
        self._reads_flags_on_device = reads_flags_on_device(self.param_groups)

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
        # Set by a GradScaler for this step when _step_supports_amp_scaling (fused=True).
        grad_scale = getattr(self, 'grad_scale', None)
        found_inf = getattr(self, 'found_inf', None)
        if skip_if is not None:
            found_inf = skip_if if found_inf is None else (found_inf != 0) | (skip_if != 0)
        first = self.param_groups[0]
        if first['skip_nonfinite']:
            take, found_inf = self._guard(found_inf)
            if not take:
                return loss
        plan = self._step_plan
        buckets = plan.reuse(self.param_groups, self.state) if plan is not None else None
        if buckets is None:  # (the plan holds no sparse gradient: _init_group refuses them)
            buckets = self._plan_buckets()
        self._check_step_values(buckets)
        _run_buckets(buckets, grad_scale, found_inf)
        return loss

    def _guard(self, overflow: Optional[Tensor]) -> Tuple[bool, Optional[Tensor]]:
        """The non-finite guard's verdict on this step (``skip_nonfinite``), before any
        state is touched: (take the step?, the flag the step then skips on)."""
        located = self._located_grads()

        def describe(position: int) -> str:
            index, p = located[position]
            return f'param group {index}, parameter of shape {tuple(p.shape)}'

        first = self.param_groups[0]
        return self.nonfinite_guard.decide(
            [p.grad for _, p in located], first['max_consecutive_skips'],
            on_device=self._reads_flags_on_device, overflow=overflow, describe=describe)

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
        # Each bucket's implementation, all decided (and any refused) before any runs.
        chosen = [choose(*buckets[k][:3], foreach=self.param_groups[members[k][0]]['foreach'],
                         fused=self.param_groups[members[k][0]]['fused']) for k in keys]
        plan = self._step_plan = StepPlan.record(
            self.param_groups, self.state, [members[k] for k in keys],
            [(buckets[k][0], buckets[k][2], how) for k, how in zip(keys, chosen)],
            _hyperparameters,
            fixed_keys=tuple(k for k, how in STEP_KEYS.items() if how is FIXED),
            scheduled_keys=tuple(k for k, how in STEP_KEYS.items() if how is SCHEDULED))
        host_plans = plan.host_plans() if plan is not None else [None] * len(keys)
        return [Bucket(members[k][0], *buckets[k], host_plan, how)
                for k, host_plan, how in zip(keys, host_plans, chosen)]

    def guards_on_device(self) -> bool:
        """True when every step runs the fused GPU kernel, which skips on a flag on the
        device: a guard then hands it its verdict as ``step(skip_if=flag)`` instead of
        deciding on the host (no sync). Decided as groups are added
        (:func:`.implementation.reads_flags_on_device`)."""
        return self._reads_flags_on_device

    def _located_grads(self) -> List[tuple]:
        """(group index, parameter) for every parameter with a gradient; a sparse
        gradient is an error naming its group."""
        located = [(index, p) for index, group in enumerate(self.param_groups)
                   for p in group['params'] if p.grad is not None]
        for index, p in located:
            if p.grad.is_sparse:
                raise RuntimeError(sparse_grad_message(self.param_groups[index], index, p))
        return located

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
                maximize=group['maximize'], cautious=group['cautious'])


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
    if not params:
        return
    hyperparameters = dict(lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                           initial_lr=initial_lr, maximize=maximize, cautious=cautious)
    _run_buckets([Bucket(0, params, grads, exp_avgs, hyperparameters, host_plan,
                         choose(params, grads, exp_avgs, foreach, fused))],
                 grad_scale, found_inf)


def _run_buckets(buckets: List[Bucket], grad_scale: Optional[Tensor],
                 found_inf: Optional[Tensor]) -> None:
    """Each bucket's update by the implementation chosen for it. ``grad_scale`` and
    ``found_inf`` are a GradScaler's (or, ``found_inf``, a guard's flag): the Triton
    kernel reads them on the device; for the others the contract is kept here, once for
    all: nothing happens when ``found_inf`` is set, else the gradients are unscaled in
    place, as ``GradScaler.unscale_`` leaves them."""
    for bucket in buckets:
        how = bucket.implementation
        if how.on_device:
            how.update(bucket.params, bucket.grads, bucket.exp_avgs, **bucket.hyperparameters,
                       grad_scale=grad_scale, found_inf=found_inf, host_plan=bucket.host_plan)
            continue
        if found_inf is not None and bool(found_inf):
            return  # (no bucket reads its flags on the device: all skip)
        if grad_scale is not None:
            torch._foreach_div_(bucket.grads, grad_scale.reshape(()))
        how.update(bucket.params, bucket.grads, bucket.exp_avgs, **bucket.hyperparameters)
