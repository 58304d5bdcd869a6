"""What the kernels and the optimizer's PyTorch implementations share, written once."""
import torch

__all__ = ['PLAIN_TYPES', 'decay_factor', 'refuse_graph_capture']

# Plain tensors, as torch.optim.optimizer's _foreach_supported_types lists them: no
# subclasses (DTensor, FakeTensor, ...), whose data a kernel cannot address.
PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def decay_factor(lr, weight_decay: float, initial_lr):
    """``1 - lr * wd``, or ``1 - wd * lr / initial_lr`` with decoupled weight decay
    (``initial_lr`` not None). Floats or Tensors."""
    if initial_lr is None:
        return 1 - lr * weight_decay
    return 1 - weight_decay * lr / initial_lr


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
