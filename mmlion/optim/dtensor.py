"""Lion on DTensors (torch FSDP2's ``fully_shard``, tensor parallelism): each rank
updates its local shards with the fast kernels.

Lion's update is elementwise, so a rank can step the local tensor of a parameter
that is sharded (``Shard``) or replicated (``Replicate``) exactly as a single process
steps the whole one, provided its gradient and ``exp_avg`` are laid out alike. Only
``cautious`` is not elementwise: it rescales by the mean of a mask over the whole
parameter, which a shard alone cannot know; for sharded parameters it is refused.
A gradient laid out otherwise (``Partial``, ``Replicate``) is redistributed to its
parameter's placements first. Anything else (a ``Partial`` parameter, another mesh)
goes to torch's DTensor dispatch, which handles it more slowly.
"""
from typing import List, Sequence, Tuple

from torch import Tensor

try:
    from torch.distributed.tensor import DTensor
except ImportError:
    try:  # torch < 2.4 keeps it private; Lion refuses DTensors there (see versions)
        from torch.distributed._tensor import DTensor
    except ImportError:  # torch built without distributed
        class DTensor:  # type: ignore[no-redef]
            """Nothing is an instance of it."""

__all__ = ['DTensor', 'local_shards']


def local_shards(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
                 cautious: bool) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """The local tensors of DTensor params, grads and exp_avgs that share a mesh, with
    params and exp_avgs alike on Shard/Replicate placements, so the kernels update them
    in place; the lists unchanged where any trio does not."""
    trios = list(zip(params, grads, exp_avgs))
    if not all(isinstance(t, DTensor) and t.device_mesh == p.device_mesh
               for p, g, m in trios for t in (p, g, m)):
        return list(params), list(grads), list(exp_avgs)
    if not all(_elementwise(p.placements) and m.placements == p.placements
               for p, _, m in trios):
        return list(params), list(grads), list(exp_avgs)
    for index, (p, _, _) in enumerate(trios):
        if cautious and any(placement.is_shard() for placement in p.placements):
            raise ValueError(
                f'cautious=True with a sharded DTensor parameter (FSDP2 / fully_shard; '
                f'parameter {index} of this call, placements {p.placements}): its '
                f'mask mean is over the whole parameter, which one shard does not see. '
                f'Use cautious=False, or DDP / mmlion.ZeroRedundancyOptimizer.')
    # A gradient laid out otherwise (Partial, Replicate) is brought to its parameter's
    # placements first: a collective that every rank makes in the same order.
    grads = [g if g.placements == p.placements else g.redistribute(placements=p.placements)
             for p, g, _ in trios]
    return ([p.to_local() for p in params], [g.to_local() for g in grads],
            [m.to_local() for m in exp_avgs])


def _elementwise(placements) -> bool:
    """True when each rank holds whole elements of the tensor (Shard or Replicate)."""
    return all(p.is_shard() or p.is_replicate() for p in placements)
