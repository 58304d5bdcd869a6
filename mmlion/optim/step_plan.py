"""What ``Lion.step`` hands to :func:`mmlion.optim.lion.lion`, worked out once and reused.

A step sorts the param groups into buckets of equal hyperparameters and collects, per
bucket, the parameters that have gradients, their gradients and their momenta. With
``paramwise_cfg``'s one group per parameter that is a Python loop over thousands of
groups, which on a GPU costs more than the kernel. :class:`StepPlan` records the
buckets of one step, and the next step reuses them after one check in C++
(``mmlion.ops._C.PlanCheck``, ``csrc/step_plan.cpp``).

**The principle.** The plan holds everything that building the buckets read, and a step
reuses it only when all of that is still the same; a step reads nothing else from the
plan. Values are compared as values, never by identity: every hyperparameter the step
reads (``Lion``'s table ``STEP_KEYS``) is kept as a frozen copy (deep for lists and
tuples, numpy scalars and arrays by type, shape and bytes), so a list mutated in place
(``group['betas'][1] = 0.5``) is seen; a value the check cannot compare (a Tensor lr, an
object of unknown type) means no plan, and the step builds its buckets every time.
Tensors are compared by identity plus what building the buckets read from them:

* the same param groups (by identity), each with the same keys in the same order,
  holding the same parameters;
* each group's fixed hyperparameters equal to those recorded, its scheduled ones (lr,
  initial_lr) equal to its bucket's first group's, present or absent alike (a scheduler
  changing every lr alike keeps the buckets; the values are read afresh each step);
* the same momenta in the optimizer's state, each held by the same parameter, each of
  the dtype recorded (a momentum cast back to ``state_dtype`` is a new one);
* the same parameters with gradients, all strided;
* for each parameter, gradient and momentum, the same answer to "does the C++ kernel
  take it?", on which the choice of each bucket's implementation rests (the devices
  follow from the parameters): the plan keeps each bucket's chosen function, and the
  step calls it.

What the kernels read from the tensors (addresses, sizes, strides, dtypes) is read
afresh by each step, except by the Triton kernel's own host plan, which keys its pointer
tables on exactly that (:func:`mmlion.ops.common.layout_key`). Where the C++ extension
is not built there is no plan: the step builds its buckets every time, as it did before
plans existed, which is correct and slower. :meth:`Lion.load_state_dict` and
:meth:`Lion.add_param_group` drop the plan, so do ``deepcopy`` and pickling.
"""
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

from torch import Tensor

from mmlion.ops.loader import CPU

__all__ = ['Bucket', 'StepPlan']


class Bucket(NamedTuple):
    """What one call of :func:`~mmlion.optim.lion.lion` takes, for groups of equal
    hyperparameters."""
    leader: int            # the first group's index: where the hyperparameters come from
    params: List[Tensor]   # those with gradients
    grads: List[Tensor]
    exp_avgs: List[Tensor]
    hyperparameters: dict  # lion()'s keyword arguments, read from the leader
    host_plan: Optional[dict]  # the GPU kernel's own plan for these lists
    implementation: Any    # the one chosen for these lists (.implementation.Implementation)


def _picker(indices: List[int]) -> Callable[[list], tuple]:
    """``indices``' items of a list as a tuple, in one C-level call (even for one index)."""
    return lambda items, get=itemgetter(*indices, indices[0]): get(items)[:-1]


class StepPlan:
    """The buckets of one step, and the check that they still hold."""

    def __init__(self, check, buckets: List[tuple], hyperparameters: Callable[[dict], dict]):
        self.check = check
        self.buckets = buckets  # (leader, params, exp_avgs, gradient picker, host plan,
        #                         implementation)
        self.hyperparameters = hyperparameters

    @classmethod
    def record(cls, param_groups: List[dict], state: dict, members: List[List[int]],
               lists: List[tuple], hyperparameters: Callable[[dict], dict],
               fixed_keys: Tuple[str, ...], scheduled_keys: Tuple[str, ...]
               ) -> Optional['StepPlan']:
        """The plan of the step just built, or None where there can be none (no C++
        extension, or a value the check cannot compare). ``members``: each bucket's group
        indices (increasing); ``lists``: each bucket's (params, exp_avgs, implementation)
        as the step built and chose them; ``hyperparameters``: what :func:`lion` takes from a group; ``fixed_keys``
        and ``scheduled_keys``: the group keys the step reads (``Lion``'s ``STEP_KEYS``)."""
        compiled = CPU.get()
        if compiled is None:
            return None
        leaders = list(range(len(param_groups)))  # groups without gradients lead themselves
        for indices in members:
            for index in indices:
                leaders[index] = indices[0]
        check = compiled.PlanCheck(param_groups, state, fixed_keys, scheduled_keys, leaders)
        if check.gradients(param_groups, state) is None:
            return None  # it cannot vouch for what it was built from
        # each group's flat indices (into the parameters) of those with gradients
        with_grad, start = [], 0
        for group in param_groups:
            with_grad.append([i for i, p in enumerate(group['params'], start)
                              if p.grad is not None])
            start += len(group['params'])
        buckets = [(indices[0], params, exp_avgs,
                    _picker(list(chain.from_iterable(with_grad[g] for g in indices))), {}, how)
                   for indices, (params, exp_avgs, how) in zip(members, lists)]
        return cls(check, buckets, hyperparameters)

    def host_plans(self) -> List[dict]:
        """Each bucket's dict for the GPU kernel's own host plan (lion()'s host_plan)."""
        return [bucket[4] for bucket in self.buckets]

    def reuse(self, param_groups: List[dict], state: dict) -> Optional[List[Bucket]]:
        """This step's buckets, or None when the plan no longer holds: one check over
        every group and parameter, then one C-level pick per bucket."""
        grads = self.check.gradients(param_groups, state)
        if grads is None:
            return None
        return [Bucket(leader, params, list(pick(grads)), exp_avgs,
                       self.hyperparameters(param_groups[leader]), host_plan, how)
                for leader, params, exp_avgs, pick, host_plan, how in self.buckets]
