"""What the kernels and the optimizer's PyTorch implementations share, written once."""
from typing import List, Optional

import torch
from torch import Tensor

from .loader import CPU

__all__ = ['PLAIN_TYPES', 'as_real', 'as_scalar', 'decay_factor', 'layout_key',
           'refuse_graph_capture']

# Plain tensors, as torch.optim.optimizer's _foreach_supported_types lists them: no
# subclasses (DTensor, FakeTensor, ...), whose data a kernel cannot address.
PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def decay_factor(lr, weight_decay: float, initial_lr):
    """``1 - lr * wd``, or ``1 - wd * lr / initial_lr`` with decoupled weight decay
    (``initial_lr`` not None). Floats or Tensors."""
    if initial_lr is None:
        return 1 - lr * weight_decay
    return 1 - weight_decay * lr / initial_lr


def as_real(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor]) -> tuple:
    """The three lists with each complex tensor viewed as real (the update is the same
    on the real and imaginary parts); the lists themselves when none is complex."""
    if not any(map(Tensor.is_complex, params)):
        return params, grads, exp_avgs
    as_real_ = [torch.view_as_real(t) if t.is_complex() else t
                for t in (*params, *grads, *exp_avgs)]
    n = len(params)
    return as_real_[:n], as_real_[n:2 * n], as_real_[2 * n:]


def as_scalar(value):
    """A one-element Tensor of any shape as a 0-dim view (no copy, no sync); anything
    else (a float, None) as it is."""
    return value.reshape(()) if isinstance(value, Tensor) else value


def refuse_graph_capture(device: torch.device, what: str) -> None:
    """Raise a clear error when ``what`` would run on ``device`` while a CUDA graph is
    being captured, which it cannot take part in yet: it may copy a new pointer table
    from a temporary host buffer, free one a graph still uses, or (the guard) query an
    event."""
    if device.type == 'cuda' and torch.cuda.is_current_stream_capturing():
        raise RuntimeError(
            f'{what} cannot be captured in a CUDA graph: its pointer tables and the '
            f'non-finite guard are managed by the host each step. Capture the model only '
            f'(torch.cuda.make_graphed_callables), or use Lion(foreach=True) with '
            f'capturable optimizers elsewhere')


def layout_key(*lists: List[Tensor]) -> Optional[bytes]:
    """What a host plan's pointer tables depend on, for lists of tensors: where each
    tensor's memory starts, its dtype, device, sizes and strides (FSDP's resharding
    moves and resizes parameters; ``zero_grad(set_to_none=True)`` hands back new
    gradient Tensors each step). Equal keys mean every tensor is laid out as before.

    One C++ call (``mmlion.ops._C.layout_key``, a few nanoseconds per tensor). None when
    some item is not a plain strided tensor whose memory holds its values (a lazy
    ``.conj()`` or negative view does not: the caller checks it the slow way and names
    it), and where the extension is not built: there is then no key, and so no host plan
    to reuse."""
    module = CPU.get()
    return None if module is None else module.layout_key(*lists)
