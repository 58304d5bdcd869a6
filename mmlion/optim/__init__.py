"""mmlion's optimizers and guarded OptimWrappers, and their registration in MMEngine's
``OPTIMIZERS`` and ``OPTIM_WRAPPERS``.

Registration happens here, once, at import. MMEngine's own optimizer module
registers lion-pytorch's or bitsandbytes' class as ``'Lion'`` when either is
installed, so it is imported first and then replaced (with one log line saying
so); otherwise ``import mmengine.optim`` after mmlion would raise ``KeyError``.
"""
import mmengine.optim  # noqa: F401  (must register its optimizers before ours)

from mmlion.registry import OPTIMIZERS
from .guarded_wrapper import GuardedAmpOptimWrapper, GuardedOptimWrapper
from .lion import Lion
from .zero import ZeroRedundancyOptimizer

__all__ = ['Lion', 'ZeroRedundancyOptimizer', 'GuardedOptimWrapper', 'GuardedAmpOptimWrapper']


# mmlion's own registry; MMEngine's root registry gets 'Lion' at ``import mmlion``
# (mmlion.engine.mmengine_fixes.apply_at_import), where another package may hold it.
OPTIMIZERS.register_module(name='Lion', module=Lion, force=True)
