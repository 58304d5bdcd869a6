"""mmlion's registries, children of MMEngine's, so that ``type='mmlion.Lion'`` and
``default_scope='mmlion'`` resolve here the way ``mmdet.*`` resolves in MMDetection.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import Registry

OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope='mmlion',
                      locations=['mmlion.optim'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmlion', locations=['mmlion.engine'])
