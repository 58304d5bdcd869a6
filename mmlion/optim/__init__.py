"""mmlion's optimizers and guarded OptimWrappers, and their registration in MMEngine's
``OPTIMIZERS`` and ``OPTIM_WRAPPERS``.

Registration happens here, once, at import. MMEngine's own optimizer module
registers lion-pytorch's or bitsandbytes' class as ``'Lion'`` when either is
installed, so it is imported first and then replaced (with one log line saying
so); otherwise ``import mmengine.optim`` after mmlion would raise ``KeyError``.
"""
import mmengine.optim  # noqa: F401  (must register its optimizers before ours)
from mmengine.logging import print_log
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS

from mmlion.registry import OPTIMIZERS
from .guarded_wrapper import GuardedAmpOptimWrapper, GuardedOptimWrapper
from .lion import Lion
from .zero import ZeroRedundancyOptimizer

__all__ = ['Lion', 'ZeroRedundancyOptimizer', 'GuardedOptimWrapper', 'GuardedAmpOptimWrapper']


def _register() -> None:
    OPTIMIZERS.register_module(name='Lion', module=Lion, force=True)
    previous = MMENGINE_OPTIMIZERS.module_dict.get('Lion')
    if previous is Lion:
        return
    if previous is not None:
        print_log(
            f"mmlion: 'Lion' in MMEngine's OPTIMIZERS was {previous.__module__}."
            f'{previous.__qualname__}; it now builds mmlion.optim.Lion '
            f"(use type='mmlion.Lion' to be explicit).",
            logger='current', level=30)
    MMENGINE_OPTIMIZERS.register_module(name='Lion', module=Lion, force=True)


_register()
