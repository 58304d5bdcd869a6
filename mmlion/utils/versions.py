"""The versions mmlion supports and the features each installed version has: the one
place that compares versions, so that a feature the installed torch, Triton or MMEngine
cannot do is refused with one message naming the feature, the version found and the
version needed. The bottom layer: it imports nothing of mmlion's.
"""
import re
from typing import Optional, Tuple

__all__ = ['SUPPORTED', 'parse', 'torch_version', 'triton_version', 'mmengine_version',
           'require', 'require_mmengine', 'require_stack', 'unsupported']

# What mmlion declares and tests (pyproject.toml and the README say the same).
SUPPORTED = dict(
    python=(3, 10),
    torch=(2, 1),
    mmengine=(0, 10),
    # fused=True on CUDA: the Triton kernel casts int64 table entries to pointers,
    # which Triton 2.x (torch 2.1-2.3's) cannot compile.
    triton=(3, 0),
    # FSDP2 (``torch.distributed.fsdp.fully_shard``) became public in torch 2.6.
    fsdp2_torch=(2, 6),
    # torch.serialization.add_safe_globals, the allow-list of torch.load's safe mode.
    safe_globals_torch=(2, 4),
)


def parse(version: str) -> Tuple[int, ...]:
    """``'2.1.2+cu121'`` -> ``(2, 1, 2)``; ``'3.0.0rc1'`` -> ``(3, 0, 0)``."""
    return tuple(int(part) for part in re.findall(r'\d+', version.split('+')[0])[:3])


def _dotted(version: Tuple[int, ...]) -> str:
    return '.'.join(map(str, version))


def torch_version() -> Tuple[int, ...]:
    import torch
    return parse(torch.__version__)


def triton_version() -> Optional[Tuple[int, ...]]:
    """The installed Triton's version, None when it does not import."""
    try:
        import triton
    except Exception:
        return None
    return parse(getattr(triton, '__version__', '0'))


def mmengine_version() -> Optional[Tuple[int, ...]]:
    try:
        import mmengine
    except ImportError:
        return None
    return parse(mmengine.__version__)


def unsupported(feature: str, package: str, found: Optional[Tuple[int, ...]],
                needed: Tuple[int, ...]) -> Optional[str]:
    """The message for ``feature`` when ``package`` is older than ``needed`` (or
    missing: ``found`` None); None when it is recent enough."""
    if found is not None and found >= needed:
        return None
    have = f'{package} {_dotted(found)} is installed' if found else f'{package} is not installed'
    return f'{feature} needs {package} >= {_dotted(needed)}; {have}'


def require(feature: str, package: str, found: Optional[Tuple[int, ...]],
            needed: Tuple[int, ...]) -> None:
    """Raise RuntimeError with :func:`unsupported`'s message when it has one."""
    message = unsupported(feature, package, found, needed)
    if message is not None:
        raise RuntimeError(message)


def require_stack() -> None:
    """What ``import mmlion`` needs: torch and MMEngine, each recent enough, checked
    with a message that says what to install (pip installs neither with mmlion)."""
    try:
        found = torch_version()
    except ImportError:
        found = None
    message = unsupported('mmlion', 'torch', found, SUPPORTED['torch'])
    if message is not None:
        raise ImportError(f'{message}; install the torch your codebase pins (mmlion does '
                          f'not install it)')
    require_mmengine()


def require_mmengine() -> None:
    """mmlion's registries and hooks are MMEngine's: either distribution of it will do
    (``mmengine``, or the maintained fork ``onedl-mmengine``, which installs the same
    import package), which is why mmlion does not depend on either by name."""
    message = unsupported('mmlion', 'MMEngine', mmengine_version(), SUPPORTED['mmengine'])
    if message is not None:
        raise ImportError(
            f'{message}. Install one of its two distributions: `pip install mmengine` '
            f'(OpenMMLab\'s) or `pip install onedl-mmengine` (the maintained fork, for newer '
            f'torch)')
