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

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))
version = {}
with open(os.path.join(here, 'mmlion', 'version.py')) as f:
    exec(f.read(), version)


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

setup(
    name='mmlion',
    version=version['__version__'],
    description='The Lion optimizer for OpenMMLab: exact, fused, registered as type=Lion',
    long_description=open(os.path.join(here, 'README.md')).read()
    if os.path.exists(os.path.join(here, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    package_data={'mmlion': ['csrc/*.cpp']},
    python_requires='>=3.8',
    install_requires=['torch', 'mmengine>=0.10.0'],
    # triton: the fused GPU step (torch's CUDA wheels already bring it; the tests run its
    # kernels on the CPU in Triton's interpreter).
    extras_require={'tests': ['pytest', 'triton>=3.0'], 'gpu': ['triton>=3.0'],
                    'det': ['mmcv>=2.0.0rc4,<2.2.0', 'mmdet>=3.0.0']},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
    license='Apache-2.0',
)
