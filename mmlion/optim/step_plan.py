"""What ``Lion.step`` hands to :func:`mmlion.optim.lion.lion`, worked out once and reused.

A step sorts the param groups into buckets of equal hyperparameters and collects, per
bucket, the parameters that have gradients, their gradients and their momenta. With
``paramwise_cfg``'s one group per parameter that is a Python loop over thousands of
groups, which on a GPU costs more than the kernel. :class:`StepPlan` records the
buckets of one step; the next step reuses them after a check that costs a few C-level
passes over the parameters:

* the same param groups (by identity and count), holding the same parameters;
* the same parameters with gradients, all dense (a parameter whose gradient appears or
  goes, as a frozen branch does, or turns sparse, rebuilds the plan);
* each bucket's groups still equal in every hyperparameter (a scheduler changing every
  lr alike keeps the buckets; the values are read afresh each step), no Tensor lr;
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

__all__ = ['StepPlan']

_NUMBERS = (float, int)
# C-level accessors, mapped over thousands of groups and parameters per step.
_PARAMS = itemgetter('params')
_GRAD = attrgetter('grad')
_EXP_AVG = itemgetter('exp_avg')


def _params(param_groups: List[dict]) -> List[Tensor]:
    return list(chain.from_iterable(map(_PARAMS, param_groups)))


def _layouts(grads: List[Optional[Tensor]]) -> list:
    """Each gradient's layout, None where there is none."""
    return list(map(getattr, grads, repeat('layout'), repeat(None)))


def _momenta(state: dict) -> Optional[list]:
    """The identity of every momentum in the optimizer's state (one pass over its values:
    no Tensor hashing); None when some parameter's state has none."""
    try:
        return list(map(id, map(_EXP_AVG, state.values())))
    except KeyError:
        return None


def _picker(indices: List[int]) -> Callable[[list], tuple]:
    """``indices``' items of a list as a tuple, in one C-level call (even for one index)."""
    return lambda items, get=itemgetter(*indices, indices[0]): get(items)[:-1]


class StepPlan:
    """The buckets of one step, and what must stay the same for them to hold."""

    def __init__(self, param_groups: List[dict], state: dict, members: List[List[int]],
                 lists: List[tuple], hyperparameters: Callable[[dict], dict],
                 static_keys: Tuple[str, ...]):
        """``state``: the optimizer's; ``members``: each bucket's group indices
        (increasing); ``lists``: each bucket's (params, exp_avgs) as the step built them;
        ``hyperparameters``: what :func:`lion` takes from a group; ``static_keys``: the
        group keys besides lr and initial_lr that must stay as recorded."""
        self.n_static = len(static_keys)
        self.groups = list(param_groups)  # held, so no new group can take an old one's id
        self.group_ids = list(map(id, param_groups))
        self.group_sizes = list(map(len, param_groups))  # a key added (initial_lr) or removed
        self.momenta = _momenta(state)
        params = _params(param_groups)
        self.param_ids = list(map(id, params))
        grads = list(map(_GRAD, params))
        self.layouts = _layouts(grads)
        self.has_initial_lr = all('initial_lr' in g for g in param_groups)
        self.hyper_of = itemgetter(*static_keys, 'lr',
                                   *(('initial_lr',) if self.has_initial_lr else ()))
        self.hyperparameters = hyperparameters
        # each group's flat indices (into params) of the parameters with gradients
        with_grad, start = [], 0
        for group in param_groups:
            end = start + len(group['params'])
            with_grad.append([i for i in range(start, end) if grads[i] is not None])
            start = end
        # (leader group, members' hyperparameters, params, exp_avgs, their grads, the
        # leader's static hyperparameters, the GPU kernel's own host plan for the bucket)
        self.buckets = [(indices[0], _picker(indices), params_, exp_avgs,
                         _picker([i for g in indices for i in with_grad[g]]),
                         self.hyper_of(param_groups[indices[0]])[:self.n_static], {})
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
        step, or None when the plan no longer holds. A few C-level passes over the groups
        and parameters, and one comparison per bucket."""
        if list(map(id, param_groups)) != self.group_ids or \
                list(map(len, param_groups)) != self.group_sizes:
            return None
        if _momenta(state) != self.momenta:
            return None
        params = _params(param_groups)
        if list(map(id, params)) != self.param_ids:
            return None
        grads = list(map(_GRAD, params))
        if _layouts(grads) != self.layouts:  # a gradient came, went, or is sparse
            return None
        hyper = list(map(self.hyper_of, param_groups))
        steps = []
        for leader, members_of, params_, exp_avgs, grads_of, static, host_plan in self.buckets:
            first = hyper[leader]
            if first[:self.n_static] != static or not all(
                    isinstance(v, _NUMBERS) for v in first[self.n_static:]):
                return None
            members = members_of(hyper)
            if members != (first,) * len(members):
                return None
            steps.append((params_, list(grads_of(grads)), exp_avgs,
                          self.hyperparameters(param_groups[leader]), host_plan))
        return steps
