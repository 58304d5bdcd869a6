"""mmlion's registries, children of MMEngine's, so that ``type='mmlion.Lion'`` and
``default_scope='mmlion'`` resolve here the way ``mmdet.*`` resolves in MMDetection.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import Registry

OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, scope='mmlion',
                      locations=['mmlion.optim'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmlion', locations=['mmlion.engine'])
# The digits convergence check's dataset, model and metric (mmlion.demo).
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mmlion',
                    locations=['mmlion.demo'])
MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmlion', locations=['mmlion.demo'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='mmlion', locations=['mmlion.demo'])
