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
from operator import itemgetter
from typing import Callable, List, Optional, Tuple

from torch import Tensor

__all__ = ['StepPlan']

_NUMBERS = (float, int)


def _grads(params: List[Tensor]) -> List[Optional[Tensor]]:
    return [p.grad for p in params]


def _layouts(grads: List[Optional[Tensor]]) -> list:
    return [None if g is None else g.layout for g in grads]


def _momenta(state: dict) -> list:
    """The identity of every momentum in the optimizer's state (one pass over its values:
    no Tensor hashing)."""
    return [id(s.get('exp_avg')) for s in state.values()]


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
        self.group_ids = list(map(id, param_groups))
        self.momenta = _momenta(state)
        params = [p for group in param_groups for p in group['params']]
        self.param_ids = list(map(id, params))
        grads = _grads(params)
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
        # the last item: the GPU kernel's own host plan for the bucket (lion()'s host_plan)
        self.buckets = [(indices, params_, exp_avgs,
                         [i for g in indices for i in with_grad[g]],
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
        step, or None when the plan no longer holds. A few passes over the groups and
        parameters, each a comprehension or a C-level map."""
        if list(map(id, param_groups)) != self.group_ids:
            return None
        if _momenta(state) != self.momenta:
            return None
        params = [p for group in param_groups for p in group['params']]
        if list(map(id, params)) != self.param_ids:
            return None
        grads = _grads(params)
        if _layouts(grads) != self.layouts:  # a gradient came, went, or is sparse
            return None
        try:
            hyper = list(map(self.hyper_of, param_groups))
        except KeyError:  # a group lost initial_lr
            return None
        if not self.has_initial_lr and any('initial_lr' in g for g in param_groups):
            return None
        steps = []
        for indices, bucket_params, exp_avgs, picks, static, host_plan in self.buckets:
            first = hyper[indices[0]]
            if first[:self.n_static] != static or not all(
                    isinstance(v, _NUMBERS) for v in first[self.n_static:]):
                return None
            if any(hyper[i] != first for i in indices):
                return None
            steps.append((bucket_params, [grads[i] for i in picks], exp_avgs,
                          self.hyperparameters(param_groups[indices[0]]), host_plan))
        return steps
