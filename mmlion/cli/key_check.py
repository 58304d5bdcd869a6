"""Every key a user writes in ``optim_wrapper`` (the wrapper's own, ``optimizer``,
``paramwise_cfg``, each ``custom_keys`` rule, ``clip_grad``) and in each hook
(``default_hooks``, ``custom_hooks``) is one that what consumes it reads; anything
else is a :class:`ConfigError` naming the key and the closest known one. The known
keys are read from the consumers (:mod:`mmlion.engine.known_keys`): the wrapper's and
the hook's signatures, MMEngine's ``build_optim_wrapper`` and the constructor's
source, torch's clip functions. Where a consumer declares nothing readable (a
``**kwargs`` that goes elsewhere, a constructor that is not MMEngine's or a subclass
of it), the check stands aside.
"""
from typing import List, Tuple

import torch
from mmengine.config import Config
from mmengine.optim import DefaultOptimWrapperConstructor, build_optim_wrapper
from mmengine.registry import HOOKS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS

from mmlion.engine.known_keys import accepted_keywords, check_keys, keys_read, own_keywords
from mmlion.optim import Lion, ZeroRedundancyOptimizer
from mmlion.optim.validation import DEFAULTS
from mmlion.registry import find_optimizer, find_registered, unknown_optimizer, unknown_type
from mmlion.utils.config_error import ConfigError

__all__ = ['check_config_keys', 'optimizer_classes']

# MMEngine's OptimWrapper: clip_grad's type picks the torch function the rest goes to.
CLIP_FUNCTIONS = {'norm': torch.nn.utils.clip_grad_norm_,
                  'value': torch.nn.utils.clip_grad_value_}
_RULE = r'custom_keys\[\s*\w+\s*\]'  # how the constructor names one custom_keys rule


def optimizer_classes(cfg: Config, optimizer: dict) -> Tuple[type, type]:
    """(the class ``optimizer['type']`` names, the class that does the updates: for
    mmlion's ZeRO its ``optimizer_type``, else the same); unknown names raise."""
    key, scope = 'optim_wrapper.optimizer', cfg.get('default_scope')
    cls = find_optimizer(optimizer.get('type'), scope)
    if cls is None:
        raise ConfigError(unknown_optimizer(f'{key}.type', optimizer.get('type')))
    if cls is not ZeroRedundancyOptimizer:
        return cls, cls
    inner_name = optimizer.get('optimizer_type', 'Lion')
    inner = find_optimizer(inner_name, scope)
    if inner is None:
        raise ConfigError(unknown_optimizer(f'{key}.optimizer_type', inner_name))
    return cls, inner


def check_config_keys(cfg: Config) -> None:
    """Raise :class:`ConfigError` for the first unknown key or type, in the order the
    Runner reads them."""
    hooks = _hooks(cfg)
    optim_wrapper = cfg.get('optim_wrapper')
    if isinstance(optim_wrapper, dict) and 'optimizer' in optim_wrapper:
        # else a dict of wrappers, each with its own constructor: not checked
        _check_optim_wrapper(cfg, optim_wrapper, [cls for _, _, cls in hooks])
    for key, hook, cls in hooks:
        known = accepted_keywords(cls)
        if known is not None:  # the Runner takes 'priority' out before building it
            check_keys(key, hook, known | {'priority'}, cls.__name__)


def _find(root, cfg: Config, key: str, name, what: str) -> type:
    cls = find_registered(root, name, cfg.get('default_scope'))
    if cls is None:
        raise ConfigError(unknown_type(key, name, root, what))
    return cls


def _check_optim_wrapper(cfg: Config, optim_wrapper: dict, hooks: List[type]) -> None:
    wrapper = _find(OPTIM_WRAPPERS, cfg, 'optim_wrapper.type',
                    optim_wrapper.get('type', 'OptimWrapper'), 'optim wrapper')
    constructor = _find(OPTIM_WRAPPER_CONSTRUCTORS, cfg, 'optim_wrapper.constructor',
                        optim_wrapper.get('constructor', 'DefaultOptimWrapperConstructor'),
                        'optim wrapper constructor')
    taken = [accepted_keywords(wrapper), keys_read(build_optim_wrapper, 'optim_wrapper_cfg'),
             keys_read(constructor, 'optim_wrapper_cfg')]
    if None not in taken:
        check_keys('optim_wrapper', optim_wrapper, frozenset().union(*taken),
                   f'{wrapper.__name__}, build_optim_wrapper or {constructor.__name__}')
    optimizer = optim_wrapper['optimizer']
    cls, inner = optimizer_classes(cfg, optimizer)
    # Lion's **kwargs only collect what it refuses, naming them; its keys are DEFAULTS.
    group_keys = frozenset(DEFAULTS) if inner is Lion else own_keywords(inner)
    if cls is inner and inner is not Lion and group_keys is not None:
        check_keys('optim_wrapper.optimizer', optimizer, group_keys | {'type'}, cls.__name__)
    paramwise = optim_wrapper.get('paramwise_cfg')
    if isinstance(paramwise, dict) and issubclass(constructor, DefaultOptimWrapperConstructor):
        # A rule may also set what the optimizer reads from its groups as it steps, or a
        # hook of this config reads from them (mmpretrain's SimSiamHook: 'fix_lr').
        # Where the optimizer's own settings cannot be read, rules are not checked.
        if group_keys is not None:
            group_keys = group_keys.union(*(keys_read(reader, r'(?:param_)?group') or ()
                                            for reader in [inner, *hooks]))
        _check_paramwise(paramwise, constructor, group_keys or frozenset())
    clip = optim_wrapper.get('clip_grad')
    if isinstance(clip, dict):
        _check_clip_grad(clip)


def _check_paramwise(paramwise: dict, constructor: type, group_keys: frozenset) -> None:
    key = 'optim_wrapper.paramwise_cfg'
    known = keys_read(constructor, 'paramwise_cfg')
    if known is not None:
        check_keys(key, paramwise, known, constructor.__name__)
    rules = paramwise.get('custom_keys')
    rule_keys = keys_read(constructor, _RULE)
    if not isinstance(rules, dict) or rule_keys is None or not group_keys:
        return
    # MMEngine's constructor also copies every key of a rule into the parameter's
    # group: a rule may set the optimizer's own settings (lr, betas, ...) directly.
    rule_keys |= group_keys - {'params'}
    for pattern, rule in rules.items():
        if isinstance(rule, dict):
            check_keys(f'{key}.custom_keys[{pattern!r}]', rule, rule_keys,
                       f'{constructor.__name__} (or the optimizer, per group)')


def _check_clip_grad(clip: dict) -> None:
    kind = clip.get('type', 'norm')
    function = CLIP_FUNCTIONS.get(kind)
    if function is None:
        raise ConfigError(f'optim_wrapper.clip_grad.type={kind!r} (must be one of '
                          f'{sorted(CLIP_FUNCTIONS)}: MMEngine\'s OptimWrapper clips the norm '
                          f'or the value)')
    known = own_keywords(function)
    if known is not None:
        check_keys('optim_wrapper.clip_grad', clip, (known - {'parameters'}) | {'type'},
                   f'torch.nn.utils.{function.__name__}')


def _hooks(cfg: Config) -> List[Tuple[str, dict, type]]:
    """(key, config, class) of each hook the config builds from a dict."""
    hooks = [(f'default_hooks.{name}', hook)
             for name, hook in (cfg.get('default_hooks') or {}).items()]
    hooks += [(f'custom_hooks[{index}]', hook)
              for index, hook in enumerate(cfg.get('custom_hooks') or [])]
    # None turns a default hook off; a Hook object is built already.
    return [(key, hook, _find(HOOKS, cfg, f'{key}.type', hook['type'], 'hook'))
            for key, hook in hooks if isinstance(hook, dict) and 'type' in hook]
