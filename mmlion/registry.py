"""mmlion's registries, children of MMEngine's, so that ``type='mmlion.Lion'`` and
``default_scope='mmlion'`` resolve here the way ``mmdet.*`` resolves in MMDetection.
"""
import difflib
from typing import Optional

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import Registry

OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope='mmlion',
                      locations=['mmlion.optim'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='mmlion',
                          locations=['mmlion.optim'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmlion', locations=['mmlion.engine'])
STRATEGIES = Registry('strategy', parent=MMENGINE_STRATEGIES, scope='mmlion',
                      locations=['mmlion.engine'])


def find_optimizer(name, default_scope: Optional[str] = None):
    """The class an optimizer ``type`` names (a registry name, scoped or not, or a
    class), looked up as the Runner would; None when nothing is registered so."""
    if isinstance(name, type):
        return name
    if not isinstance(name, str):
        return None
    with MMENGINE_OPTIMIZERS.switch_scope_and_registry(default_scope) as registry:
        return registry.get(name)


def unknown_optimizer(key: str, name) -> str:
    """The message for ``key=name`` that names no optimizer, with close names."""
    known = sorted(set(MMENGINE_OPTIMIZERS.module_dict) | set(OPTIMIZERS.module_dict))
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f'; did you mean {close}?' if close else ''
    return (f"{key}={name!r} is not a registered optimizer{hint} (mmlion's are registered "
            f"by custom_imports=dict(imports=['mmlion']))")

