"""mmlion: the Lion optimizer (Chen et al. 2023) for OpenMMLab training.

``import mmlion`` (or ``custom_imports=dict(imports=['mmlion'])`` in a config)
registers :class:`mmlion.optim.Lion` as ``type='Lion'`` in MMEngine's
``OPTIMIZERS`` registry.
"""
from .optim import Lion
from .version import __version__

__all__ = ['Lion', '__version__']
