"""Install mmlion; build its fused CPU kernel (``mmlion._C``) against the installed torch.

The kernel is a torch C++ extension, so it must be compiled against the torch that
will import it. pip's default build isolation would fetch a second, newest torch
(a multi-GB CUDA build) to compile against; install with
``pip install -e . --no-build-isolation``. Without torch in the build environment
the package installs without the kernel and the optimizer says so at first use.
Set ``MMLION_NO_EXT=1`` to skip the build on purpose.
"""
import os
import sys

from setuptools import setup


def extensions():
    if os.environ.get('MMLION_NO_EXT') == '1':
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print('mmlion: torch is not importable while building; installing without the '
              'fused kernel (use `pip install --no-build-isolation`)', file=sys.stderr)
        return [], {}
    ext = CppExtension(
        'mmlion._C', ['mmlion/csrc/lion_cpu.cpp'],
        # The flags of mmlion/_ext.py's build at first use (no FMA contraction: the
        # same bits from every CPU clone of the kernel).
        extra_compile_args=['-O3', '-g0', '-fopenmp', '-ffp-contract=off'],
        extra_link_args=['-fopenmp'])
    return [ext], {'build_ext': BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extensions()

# The metadata (name, version, Python and extras) is in pyproject.toml; this file adds
# only what needs code: the C++ extension, built against the torch in the environment.
setup(ext_modules=ext_modules, cmdclass=cmdclass, zip_safe=False)
