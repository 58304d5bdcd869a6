"""How the C++ kernels are compiled: the one list of sources and flags.

``setup.py`` reads this file (with ``runpy``, before mmlion can be imported) to build
``mmlion.ops._C`` at install time, and :mod:`mmlion.ops.loader` compiles the same
sources with the same flags at first use when the install built none. It imports
nothing.
"""
import os.path as osp

EXTENSION = 'mmlion.ops._C'
# Relative to the repository root (setup.py) and, joined to this folder, at run time.
SOURCES = ['csrc/bindings.cpp', 'csrc/lion_cpu.cpp', 'csrc/layout_key.cpp',
           'csrc/step_plan.cpp', 'csrc/frozen_value.cpp']
# -ffp-contract=off: no fused multiply-adds, so the AVX-512, AVX2 and baseline clones
# of the kernel (and every machine) give the same bits.
COMPILE_FLAGS = ['-O3', '-g0', '-fopenmp', '-ffp-contract=off']
LINK_FLAGS = ['-fopenmp']


def source_paths(root: str = osp.dirname(osp.abspath(__file__))) -> list:
    """The sources as paths under ``root`` (this folder by default)."""
    return [osp.join(root, source) for source in SOURCES]
