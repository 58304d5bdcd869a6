"""Test-only: make torchvision's pure-Python parts importable on this project's CPU-only
torch, for mmpretrain (whose models, datasets and engine import torchvision).

The only torchvision wheels the registry has for torch 2.13 are CUDA builds. Their
compiled operators do not load on a CPU torch, and two modules that register Python
kernels for those operators (``_meta_registrations``, ``_autograd_registrations``)
then fail at ``import torchvision`` with ``operator torchvision::nms does not exist``.
So ``tools/install.sh`` installs torchvision into a folder of its own,
``<venv>/torchvision-cpu``, outside site-packages, where nothing finds it by
accident (an importable but broken torchvision breaks mmengine and deepspeed too).
This module puts that folder on ``sys.path`` and gives the two modules empty stand-ins.
It lives in the tests only: Python runs it at start-up (as ``sitecustomize``) when
this folder is on ``PYTHONPATH``, which the tests set for the processes that train
mmpretrain models; ``tests/conftest.py`` imports it for the pytest process itself.
Nothing of it is in the library. On a GPU machine, ``pip install torchvision`` (the
build that matches torch) needs none of this.
"""
import importlib.util
import os.path as osp
import sys
import types

FOLDER = osp.join(sys.prefix, 'torchvision-cpu')


def install() -> bool:
    """True when torchvision can be imported: a working install (a GPU machine's) is
    left alone; else the folder above, when it exists, is used."""
    if FOLDER not in sys.path and importlib.util.find_spec('torchvision') is not None:
        return True
    if not osp.isdir(FOLDER):
        return False
    if FOLDER not in sys.path:
        sys.path.append(FOLDER)
    for name in ('torchvision._meta_registrations', 'torchvision._autograd_registrations'):
        sys.modules.setdefault(name, types.ModuleType(name))
    return True


install()
