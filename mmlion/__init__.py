"""mmlion: the Lion optimizer (Chen et al. 2023) for OpenMMLab training.

``import mmlion`` (or ``custom_imports=dict(imports=['mmlion'])`` in a config)
registers :class:`mmlion.optim.Lion` as ``type='Lion'`` in MMEngine's
``OPTIMIZERS`` registry, and lets ``torch.load``'s safe mode read MMEngine's
checkpoints (see :mod:`mmlion.utils.checkpoint`).
"""
from .optim import Lion
from .utils.checkpoint import allow_mmengine_checkpoints
from .version import __version__

# Checkpoints the Runner writes must load under torch.load's safe default.
allow_mmengine_checkpoints()

__all__ = ['Lion', '__version__']
