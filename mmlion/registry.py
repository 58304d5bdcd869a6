"""mmlion's registries, children of MMEngine's, so that ``type='mmlion.Lion'`` and
``default_scope='mmlion'`` resolve here the way ``mmdet.*`` resolves in MMDetection.
"""
from typing import Optional

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import Registry

from mmlion.utils.config_error import did_you_mean

OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope='mmlion',
                      locations=['mmlion.optim'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='mmlion',
                          locations=['mmlion.optim'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmlion', locations=['mmlion.engine'])
STRATEGIES = Registry('strategy', parent=MMENGINE_STRATEGIES, scope='mmlion',
                      locations=['mmlion.engine'])


def find_registered(root: Registry, name, default_scope: Optional[str] = None):
    """The class a ``type`` names in ``root`` (one of MMEngine's registries) or its
    children: a registry name, scoped or not, or a class, looked up as the Runner
    would; None when nothing is registered so."""
    if isinstance(name, type):
        return name
    if not isinstance(name, str):
        return None
    with root.switch_scope_and_registry(default_scope) as registry:
        return registry.get(name)


def unknown_type(key: str, name, root: Registry, what: str) -> str:
    """The message for ``key=name`` that names nothing in ``root`` (one of MMEngine's
    registries, ``what`` it holds), with close names, mmlion's under their scope."""
    known = set(root.module_dict)
    for child in root.children.values():
        known |= {f'{child.scope}.{k}' for k in child.module_dict}
    if isinstance(name, str) and f'mmlion.{name}' in known:
        hint = f"; did you mean 'mmlion.{name}'?"
    else:
        hint = did_you_mean(name, known, n=3)
    return (f"{key}={name!r} is not a registered {what}{hint} (mmlion's are registered "
            f"by custom_imports=dict(imports=['mmlion']))")


def find_optimizer(name, default_scope: Optional[str] = None):
    """The class an optimizer ``type`` names; None when nothing is registered so."""
    return find_registered(MMENGINE_OPTIMIZERS, name, default_scope)


def unknown_optimizer(key: str, name) -> str:
    """The message for ``key=name`` that names no optimizer, with close names."""
    return unknown_type(key, name, MMENGINE_OPTIMIZERS, 'optimizer')
