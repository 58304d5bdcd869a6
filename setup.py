"""Install mmlion; build its fused CPU kernel (``mmlion.ops._C``) against the installed torch.

The kernel is a torch C++ extension, so it must be compiled against the torch that
will import it. pip's default build isolation would fetch a second, newest torch
(a multi-GB CUDA build) to compile against; install with
``pip install -e . --no-build-isolation``. Without torch in the build environment
the package installs without the kernel and the optimizer says so at first use.
Set ``MMLION_NO_EXT=1`` to skip the build on purpose.
"""
import os
import os.path as osp
import runpy
import sys

from setuptools import setup

# The sources and flags, from the one file that lists them (the loader compiles the same
# at first use); read as a file, since mmlion cannot be imported before it is installed.
BUILD = runpy.run_path(osp.join(osp.dirname(osp.abspath(__file__)), 'mmlion', 'ops', 'build.py'))


def extensions():
    if os.environ.get('MMLION_NO_EXT') == '1':
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print('mmlion: torch is not importable while building; installing without the '
              'fused kernel (use `pip install --no-build-isolation`)', file=sys.stderr)
        return [], {}
    ext = CppExtension(BUILD['EXTENSION'], BUILD['source_paths'](osp.join('mmlion', 'ops')),
                       extra_compile_args=BUILD['COMPILE_FLAGS'],
                       extra_link_args=BUILD['LINK_FLAGS'])
    return [ext], {'build_ext': BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extensions()

# The metadata (name, version, Python and extras) is in pyproject.toml; this file adds
# only what needs code: the C++ extension, built against the torch in the environment.
setup(ext_modules=ext_modules, cmdclass=cmdclass, zip_safe=False)
