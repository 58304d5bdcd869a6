"""Load a checkpoint as the installed MMEngine's Runner loads it (for the tools'
checks, before any Runner exists).

MMEngine 0.10.7 saves its message hub in every checkpoint: ``HistoryBuffer``
objects holding numpy arrays, and its statistics methods pickled as
``getattr(HistoryBuffer, 'min')``. The safe unpickler refuses all three, so
``resume=True`` and ``load_from`` fail on torch 2.13. This allows exactly those
globals: the numpy array and scalar reconstructors, ``HistoryBuffer``, and, in
place of ``builtins.getattr``, a stand-in that resolves only
``HistoryBuffer.<min|max|current|mean>`` and refuses anything else.

FSDP's sharded checkpoints (``FSDPStrategy(state_dict_cfg='local')``, one
``rank{i}.pth`` per rank) hold ``ShardedTensor`` objects; their classes (the tensor,
its shards and their metadata, all plain data) are allowed as well, and the getattr
stand-in resolves ``ShardedTensor.ProcessGroupState`` (how that nested class pickles).

The OneDL fork (onedl-mmengine 0.10.12) fixed this in MMEngine itself: it loads under
its own allow-list (``mmengine.runner.checkpoint.get_torch_safe_globals``, falling
back to ``weights_only=False`` with a warning). There mmlion stands aside and changes
nothing in torch; :func:`load_checkpoint_file` loads as the installed MMEngine does.
"""
from typing import Container, Optional, Tuple

import torch

def mmengine_loads_safely() -> bool:
    """True when the installed MMEngine loads its checkpoints under torch's safe mode
    itself (the OneDL fork); upstream MMEngine 0.10.7 does not."""
    from mmengine.runner import checkpoint
    return hasattr(checkpoint, 'get_torch_safe_globals')


def load_checkpoint_file(path: str, mmap: bool = False):
    """Load a checkpoint on the CPU as this MMEngine's Runner will load it."""
    if mmengine_loads_safely():
        from mmengine.runner.checkpoint import _safe_torch_load
        return _safe_torch_load(path, map_location='cpu')
    return torch.load(path, map_location='cpu', mmap=mmap)


def first_nonfinite(state_dict, names: Container[str]) -> Optional[Tuple[str, int, int]]:
    """(name, non-finite count, size) of the first floating tensor of ``state_dict``
    among ``names`` (a model's parameters: a buffer may hold -inf on purpose, as an
    attention mask does) that holds a NaN or an Inf; None where every one is finite."""
    for name, value in (state_dict or {}).items():
        if name in names and isinstance(value, torch.Tensor) and value.is_floating_point():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                return name, bad, value.numel()
    return None
