"""mmlion: the Lion optimizer (Chen et al. 2023) for OpenMMLab training.

``import mmlion`` (or ``custom_imports=dict(imports=['mmlion'])`` in a config)
registers :class:`mmlion.optim.Lion` as ``type='Lion'`` in MMEngine's
``OPTIMIZERS`` registry (with ``mmlion.ZeroRedundancyOptimizer``), registers the
hooks of :mod:`mmlion.engine` (``mmlion.ResumableCheckpointHook``,
``mmlion.NonFiniteGradHook``), and lets ``torch.load``'s safe mode read MMEngine's
checkpoints (see :mod:`mmlion.utils.checkpoint`).
"""
from . import engine  # noqa: F401  (registers mmlion's hooks and file backend)
from .optim import Lion
from .utils.checkpoint import allow_mmengine_checkpoints
from .version import __version__

# Checkpoints the Runner writes must load under torch.load's safe default.
allow_mmengine_checkpoints()

__all__ = ['Lion', '__version__']
