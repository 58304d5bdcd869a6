"""What ``Lion.step`` hands to :func:`mmlion.optim.lion.lion`, worked out once and reused.

A step sorts the param groups into buckets of equal hyperparameters and collects, per
bucket, the parameters that have gradients, their gradients and their momenta. With
``paramwise_cfg``'s one group per parameter that is a Python loop over thousands of
groups, which on a GPU costs more than the kernel. :class:`StepPlan` records the
buckets of one step; the next step reuses them after a check that costs one pass in
C++ (``mmlion.ops._C.PlanCheck``) or, where the extension is not built, a few C-level
passes in Python (:class:`PythonCheck`):

* the same param groups (by identity, each with the same keys: PlanCheck also wants
  them in the same order), holding the same parameters;
* the same parameters with gradients, all strided (a parameter whose gradient appears
  or goes, as a frozen branch does, or turns sparse, rebuilds the plan);
* each group's hyperparameters besides lr and initial_lr as recorded (a momentum or
  weight-decay scheduler rebuilds the plan), its lr and initial_lr numbers equal to its
  bucket's first group's (a scheduler changing every lr alike keeps the buckets; the
  values are read afresh each step);
* the same momenta in the optimizer's state (by identity: torch's
  ``ZeroRedundancyOptimizer.load_state_dict`` writes its inner optimizer's state
  directly, not through ``Lion.load_state_dict``).

:meth:`Lion.load_state_dict` and :meth:`Lion.add_param_group` drop the plan, so do
``deepcopy`` and pickling. The gradients are read afresh each step
(``zero_grad(set_to_none=True)`` hands back new Tensors every step); the kernel's own
host plan checks their storage (:mod:`mmlion.ops.lion_triton`).
"""
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Callable, List, Optional, Tuple

from torch import Tensor

from mmlion.ops.loader import CPU

__all__ = ['StepPlan', 'PythonCheck', 'check_type']

_NUMBERS = (float, int)  # and their subclasses (numpy.float64, bool), as PyFloat_Check
# C-level accessors, mapped over thousands of groups and parameters per step.
_PARAMS = itemgetter('params')
_GRAD = attrgetter('grad')


def _params(param_groups: List[dict]) -> List[Tensor]:
    return list(chain.from_iterable(map(_PARAMS, param_groups)))


def _layouts(grads: List[Optional[Tensor]]) -> list:
    """Each gradient's layout, None where there is none."""
    return list(map(getattr, grads, repeat('layout'), repeat(None)))


def _momenta(state: dict) -> list:
    """Every momentum in the optimizer's state, in its order (one pass over its values:
    no Tensor hashing), None where a parameter's state has none."""
    return [s.get('exp_avg') for s in state.values()]


def _picker(indices: List[int]) -> Callable[[list], tuple]:
    """``indices``' items of a list as a tuple, in one C-level call (even for one index)."""
    return lambda items, get=itemgetter(*indices, indices[0]): get(items)[:-1]


class PythonCheck:
    """The check a plan makes each step, in Python: what ``mmlion.ops._C.PlanCheck``
    does in one C++ pass where the extension is built (the tests hold them to the same
    answers). It holds what it compares by identity, so no new object can take an old
    one's ``id``."""

    def __init__(self, param_groups: List[dict], state: dict, static_keys: Tuple[str, ...],
                 scheduled_keys: Tuple[str, ...], leaders: List[int]):
        self.groups = list(param_groups)
        self.group_ids = list(map(id, param_groups))
        self.group_sizes = list(map(len, param_groups))  # a key added or removed
        self.params = _params(param_groups)
        self.param_ids = list(map(id, self.params))
        self.layouts = _layouts(list(map(_GRAD, self.params)))
        self.static_of = itemgetter(*static_keys, static_keys[0])
        self.static = list(map(self.static_of, param_groups))
        self.scheduled_of = itemgetter(*scheduled_keys, scheduled_keys[0])
        self.leaders = leaders
        self.momenta = _momenta(state)
        self.momentum_ids = list(map(id, self.momenta))

    def gradients(self, param_groups: List[dict], state: dict) -> Optional[list]:
        """Every parameter's gradient (None where it has none) when the plan holds,
        else None."""
        if list(map(id, param_groups)) != self.group_ids or \
                list(map(len, param_groups)) != self.group_sizes:
            return None
        params = _params(param_groups)
        if list(map(id, params)) != self.param_ids:
            return None
        try:
            if list(map(self.static_of, param_groups)) != self.static:
                return None
            scheduled = list(map(self.scheduled_of, param_groups))
        except KeyError:  # a key went, and another came
            return None
        types = set(map(type, chain.from_iterable(scheduled)))  # a few: checked one by one
        if not all(issubclass(t, _NUMBERS) for t in types) or \
                list(map(scheduled.__getitem__, self.leaders)) != scheduled:
            return None
        if list(map(id, _momenta(state))) != self.momentum_ids:
            return None
        grads = list(map(_GRAD, params))
        if _layouts(grads) != self.layouts:  # a gradient came, went, or is sparse
            return None
        return grads


def check_type() -> type:
    """What checks a plan each step: ``mmlion.ops._C.PlanCheck`` where the extension is
    built, else :class:`PythonCheck`."""
    compiled = CPU.get()
    return PythonCheck if compiled is None else compiled.PlanCheck


class StepPlan:
    """The buckets of one step, and what must stay the same for them to hold."""

    def __init__(self, param_groups: List[dict], state: dict, members: List[List[int]],
                 lists: List[tuple], hyperparameters: Callable[[dict], dict],
                 static_keys: Tuple[str, ...]):
        """``state``: the optimizer's; ``members``: each bucket's group indices
        (increasing); ``lists``: each bucket's (params, exp_avgs) as the step built them;
        ``hyperparameters``: what :func:`lion` takes from a group; ``static_keys``: the
        group keys besides lr and initial_lr that must stay as recorded."""
        self.hyperparameters = hyperparameters
        leaders = list(range(len(param_groups)))  # groups without gradients lead themselves
        for indices in members:
            for index in indices:
                leaders[index] = indices[0]
        scheduled_keys = ('lr', 'initial_lr') if all('initial_lr' in g for g in param_groups) \
            else ('lr',)
        self.check = check_type()(param_groups, state, static_keys, scheduled_keys, leaders)
        # each group's flat indices (into the parameters) of those with gradients
        with_grad, start = [], 0
        for group in param_groups:
            with_grad.append([i for i, p in enumerate(group['params'], start)
                              if p.grad is not None])
            start += len(group['params'])
        # (leader group, params, exp_avgs, their gradients' picker, the GPU kernel's own
        # host plan for the bucket)
        self.buckets = [(indices[0], params_, exp_avgs,
                         _picker([i for g in indices for i in with_grad[g]]), {})
                        for indices, (params_, exp_avgs) in zip(members, lists)]

    def host_plans(self) -> List[dict]:
        """Each bucket's dict for the GPU kernel's own host plan (lion()'s host_plan)."""
        return [bucket[-1] for bucket in self.buckets]

    @staticmethod
    def usable(param_groups: List[dict]) -> bool:
        """Whether a plan can stand for these groups: no Tensor lr (compared by value,
        a Tensor would be ambiguous)."""
        return not any(isinstance(g['lr'], Tensor) or isinstance(g.get('initial_lr'), Tensor)
                       for g in param_groups)

    def reuse(self, param_groups: List[dict], state: dict) -> Optional[List[tuple]]:
        """Each bucket's (params, grads, exp_avgs, hyperparameters, host plan) for this
        step, or None when the plan no longer holds: one check over every group and
        parameter (:class:`PythonCheck`), then one C-level pick per bucket."""
        grads = self.check.gradients(param_groups, state)
        if grads is None:
            return None
        return [(params_, list(pick(grads)), exp_avgs,
                 self.hyperparameters(param_groups[leader]), host_plan)
                for leader, params_, exp_avgs, pick, host_plan in self.buckets]
