"""Let ``torch.load``'s safe mode (``weights_only=True``, torch's default since 2.6)
read MMEngine's checkpoints, without turning that safety off.

MMEngine 0.10.7 saves its message hub in every checkpoint: ``HistoryBuffer``
objects holding numpy arrays, and its statistics methods pickled as
``getattr(HistoryBuffer, 'min')``. The safe unpickler refuses all three, so
``resume=True`` and ``load_from`` fail on torch 2.13. This allows exactly those
globals: the numpy array and scalar reconstructors, ``HistoryBuffer``, and, in
place of ``builtins.getattr``, a stand-in that resolves only
``HistoryBuffer.<min|max|current|mean>`` and refuses anything else.
"""
import pickle

import numpy as np
import torch

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name):
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'mmlion: refusing getattr({obj!r}, {name!r}) while loading a checkpoint; only '
        f'HistoryBuffer.{"/".join(_HISTORY_BUFFER_METHODS)} are allowed')


def _numpy_globals():
    core = getattr(np, '_core', None) or np.core
    found = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes through their classes (np.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return found


def allow_mmengine_checkpoints() -> None:
    """Register the globals above with ``torch.serialization`` (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 loads with weights_only=False by default
        return
    from mmengine.logging import HistoryBuffer
    add([HistoryBuffer, *_numpy_globals(),
         (_history_buffer_getattr, 'builtins.getattr')])
