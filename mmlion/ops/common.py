"""What the kernels and the optimizer's PyTorch implementations share, written once."""
import torch

__all__ = ['PLAIN_TYPES', 'decay_factor']

# Plain tensors, as torch.optim.optimizer's _foreach_supported_types lists them: no
# subclasses (DTensor, FakeTensor, ...), whose data a kernel cannot address.
PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def decay_factor(lr, weight_decay: float, initial_lr):
    """``1 - lr * wd``, or ``1 - wd * lr / initial_lr`` with decoupled weight decay
    (``initial_lr`` not None). Floats or Tensors."""
    if initial_lr is None:
        return 1 - lr * weight_decay
    return 1 - weight_decay * lr / initial_lr
