"""Let ``torch.load``'s safe mode (``weights_only=True``, torch's default since 2.6)
read MMEngine's checkpoints, without turning that safety off.

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
import functools
import pickle

import numpy as np
import torch

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


@functools.lru_cache(maxsize=None)
def _allowed_attributes():
    """``{class: names}`` the getattr stand-in may resolve (built once: a checkpoint
    calls the stand-in for every statistic of its message hub)."""
    from mmengine.logging import HistoryBuffer
    allowed = {HistoryBuffer: _HISTORY_BUFFER_METHODS}
    sharded_tensor_classes = _sharded_tensor_globals()
    if sharded_tensor_classes:
        sharded_tensor = sharded_tensor_classes[0]
        allowed[sharded_tensor] = ('ProcessGroupState', )
    return allowed


def _checkpoint_getattr(obj, name):
    allowed = _allowed_attributes()
    if name in allowed.get(obj, ()):
        return getattr(obj, name)
    listed = ', '.join(f'{cls.__name__}.{"/".join(names)}' for cls, names in allowed.items())
    raise pickle.UnpicklingError(
        f'mmlion: refusing getattr({obj!r}, {name!r}) while loading a checkpoint; only '
        f'{listed} are allowed')


def _numpy_globals():
    core = getattr(np, '_core', None) or np.core
    found = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes through their classes (np.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return found


def _sharded_tensor_globals():
    """ShardedTensor first, then the classes it pickles with; none without distributed."""
    try:
        from torch.distributed._shard.metadata import ShardMetadata
        from torch.distributed._shard.sharded_tensor import metadata, shard
        from torch.distributed._shard.sharded_tensor.api import ShardedTensor
        from torch.distributed._shard.sharding_spec import ChunkShardingSpec
        from torch.distributed.remote_device import _remote_device
    except ImportError:  # torch built without distributed support
        return []
    return [ShardedTensor, ShardedTensor.ProcessGroupState, shard.Shard, ShardMetadata,
            metadata.ShardedTensorMetadata, metadata.TensorProperties,
            metadata.MEM_FORMAT_ENCODING, ChunkShardingSpec, _remote_device]


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


def allow_mmengine_checkpoints() -> None:
    """Register the globals above with ``torch.serialization`` (idempotent), unless
    torch has no allow-list or MMEngine loads safely itself."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 loads with weights_only=False by default
        return
    if mmengine_loads_safely():
        return
    from mmengine.logging import HistoryBuffer
    add([HistoryBuffer, *_numpy_globals(), *_sharded_tensor_globals(),
         (_checkpoint_getattr, 'builtins.getattr')])
