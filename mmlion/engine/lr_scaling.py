"""``auto_scale_lr`` with a named rule, and the batch that is really used.

MMEngine scales every learning rate linearly, ``lr * real_batch / base_batch_size``, with
``real_batch`` = world size x per-process batch. mmlion adds two things:

* **A rule a config can name**: ``'linear'``, ``'sqrt'``, or any power
  ``dict(type='power', exponent=k)``: every lr times ``(effective batch / base batch) **
  k``. Lion's update is a sign, so its step is ``lr`` whatever the gradient noise, and the
  square-root rule (Malladi et al. 2022 for Adam-type methods; Li et al. 2024, "Surge
  phenomenon", for sign-based ones) is the textbook candidate. mmlion's evidence
  (docs/evidence.md): recipe lrs scaled by each rule, the Shapes detector at 4x its batch
  scored 5 points higher with the square root, and a small MLP on the digits did better
  with the linear rule. With the lr tuned per batch for Lion and AdamW alike, Lion's
  best lr grows as ``batch ** k`` with ``k`` from 0.58 to 0.89 per seed on both tasks
  (the digits 16 to 256, the detector 16 to 64; optima refined between grid points),
  0.82 and 1.24 through the seed means. :data:`LION_DEFAULT_RULE` is the power 0.75:
  inside the per-seed spread, the digits' fit through the grid's optima, and below the
  detector's seed-mean fit, on the side where a wrong lr costs less: a rule that
  undershoots the lr costs some accuracy per epoch, one that overshoots a sign update
  can diverge.
* **The batch each update sees.** ``accumulative_counts`` steps the optimizer once per
  that many batches; MMEngine's rule ignores it, mmlion's counts it.

A config names the rule::

    auto_scale_lr = dict(enable=False, base_batch_size=256, rule='sqrt')

Without ``rule``, a wrapper whose optimizer is Lion gets :data:`LION_DEFAULT_RULE` with
the effective batch, and any other optimizer MMEngine's own code (so an AdamW config
behaves exactly as it always did). Weight decay is left as it is, so ``lr *
weight_decay`` scales with the lr: Lion's decoupled decay bounds every weight to ``1 /
weight_decay`` in magnitude (Chen et al. 2023b, "Lion secretly solves constrained
optimization"), a bound that should not move with the batch, and MMEngine's rule
treats AdamW's decay the same way, so a converted Lion twin stays matched to its AdamW.

The Runner (and the FlexibleRunner's strategies) call :func:`runner_scale_lr` (and
:func:`strategy_scale_lr`) in place of MMEngine's methods; ``import mmlion`` installs
them (:mod:`mmlion.engine.mmengine_fixes`, workaround ``'lr_scaling'``, which keeps
MMEngine's originals). For every optimizer but Lion with no ``rule`` named, they hand
the call to MMEngine's original, so its behaviour (and its errors) stay exactly as they
are.
"""
import math
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

from .known_keys import check_keys

__all__ = ['NAMED_RULES', 'LION_DEFAULT_RULE', 'check_auto_scale_lr', 'rule_exponent',
           'rule_label', 'Scaling', 'rule_for', 'plan_scaling', 'MMENGINE_METHODS',
           'runner_scale_lr', 'strategy_scale_lr']

# Every rule is a power of the batch ratio: lr x (effective batch / base batch) ** k.
# A config names one of these, or any k as dict(type='power', exponent=k).
NAMED_RULES: Dict[str, float] = {'linear': 1.0, 'sqrt': 0.5}
# Lion's rule when a config names none: see the module's docstring and docs/lr_scaling.md.
LION_DEFAULT_RULE: dict = dict(type='power', exponent=0.75)
KEYS = ('enable', 'base_batch_size', 'rule')
POWER_KEYS = ('type', 'exponent')


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and \
        math.isfinite(value)


def check_rule(rule, key: str = 'auto_scale_lr.rule') -> None:
    """Raise ``ValueError`` naming the key and value unless ``rule`` is a named rule or
    ``dict(type='power', exponent=k)`` with a finite ``k >= 0``."""
    if isinstance(rule, str):
        if rule not in NAMED_RULES:
            raise ValueError(f"{key} must be one of {sorted(NAMED_RULES)} or dict(type='power', "
                             f"exponent=k) (or left out: {rule_label(LION_DEFAULT_RULE)} for "
                             f"Lion, 'linear' otherwise), got {rule!r}")
        return
    if not isinstance(rule, dict):
        raise ValueError(f"{key} must be one of {sorted(NAMED_RULES)} or dict(type='power', "
                         f'exponent=k), got {rule!r}')
    check_keys(key, rule, POWER_KEYS, 'the power rule, lr x (batch ratio) ** exponent')
    if rule.get('type') != 'power':
        raise ValueError(f"{key}.type must be 'power' (lr x (batch ratio) ** exponent), "
                         f"got {rule.get('type')!r}")
    exponent = rule.get('exponent')
    if not _is_number(exponent) or exponent < 0:
        raise ValueError(f'{key}.exponent must be a finite number >= 0 (1 is the linear rule, '
                         f'0.5 the square root, 0 no scaling), got {exponent!r}')


def rule_exponent(rule) -> float:
    """k of a checked rule: the lr is multiplied by (batch ratio) ** k."""
    return NAMED_RULES[rule] if isinstance(rule, str) else float(rule['exponent'])


def rule_label(rule) -> str:
    """How the log and the errors write a rule."""
    if isinstance(rule, str):
        return repr(rule)
    return f"dict(type='power', exponent={rule['exponent']!r})"


def check_auto_scale_lr(auto_scale_lr, key: str = 'auto_scale_lr') -> None:
    """Raise ``ValueError`` naming the key and value for a setting the rule cannot use."""
    if auto_scale_lr is None:
        return
    if not isinstance(auto_scale_lr, dict):
        raise ValueError(f'{key} must be a dict such as dict(base_batch_size=256), '
                         f'got {auto_scale_lr!r}')
    check_keys(key, auto_scale_lr, KEYS, "MMEngine's Runner.scale_lr (with mmlion's rule)")
    enable = auto_scale_lr.get('enable', False)
    if not isinstance(enable, bool):
        raise ValueError(f'{key}.enable must be True or False, got {enable!r}')
    if 'base_batch_size' not in auto_scale_lr:
        if enable:
            raise ValueError(f'{key}.base_batch_size is missing: the total batch the '
                             'config\'s lr was tuned for')
    else:
        base = auto_scale_lr['base_batch_size']
        if not _is_number(base) or base <= 0:
            raise ValueError(f'{key}.base_batch_size must be a positive number (the total '
                             f'batch the lr was tuned for), got {base!r}')
    if auto_scale_lr.get('rule') is not None:
        check_rule(auto_scale_lr['rule'], f'{key}.rule')


def is_lion(optimizer) -> bool:
    """mmlion's Lion, alone or inside mmlion's ZeroRedundancyOptimizer."""
    from mmlion.optim import Lion
    inner = getattr(optimizer, 'optim', None)  # ZeroRedundancyOptimizer's local optimizer
    return isinstance(optimizer, Lion) or isinstance(inner, Lion)


class Scaling(NamedTuple):
    rule: Union[str, dict]  # a name of NAMED_RULES or dict(type='power', exponent=k)
    why: str              # where the rule came from
    world_size: int
    batch_size: int       # per process
    accumulation: int     # accumulative_counts
    base_batch: float
    factor: float         # every lr of the wrapper is multiplied by it

    @property
    def effective_batch(self) -> int:
        return self.world_size * self.batch_size * self.accumulation

    def describe(self, name: str = '') -> str:
        return (f'auto_scale_lr{name}: effective batch {self.effective_batch} = '
                f'{self.world_size} process(es) x {self.batch_size} per process x '
                f'{self.accumulation} accumulated step(s), tuned for {self.base_batch:g}; '
                f'rule {rule_label(self.rule)} ({self.why}): lr x {self.factor:.6g}; weight decay '
                f'unchanged, so lr * weight_decay also x {self.factor:.6g}')


MMENGINE_RULE = "MMEngine's rule: no auto_scale_lr.rule, and not Lion"


def rule_for(auto_scale_lr: dict, optimizer) -> Tuple[Union[str, dict], str]:
    """(rule, where it came from) for one wrapper's optimizer."""
    rule = auto_scale_lr.get('rule')
    if rule is not None:
        return rule, 'auto_scale_lr.rule'
    if is_lion(optimizer):
        return dict(LION_DEFAULT_RULE), "Lion's default, from mmlion's batch-size evidence"
    return 'linear', MMENGINE_RULE


def plan_scaling(auto_scale_lr: dict, optimizer, world_size: int, batch_size: int,
                 accumulation: int = 1) -> Scaling:
    """How one wrapper's lrs scale (``auto_scale_lr`` checked by
    :func:`check_auto_scale_lr`)."""
    rule, why = rule_for(auto_scale_lr, optimizer)
    base = auto_scale_lr['base_batch_size']
    ratio = world_size * batch_size * accumulation / base
    return Scaling(rule, why, world_size, batch_size, accumulation, base,
                   ratio ** rule_exponent(rule))


# -- in place of MMEngine's Runner.scale_lr and BaseStrategy._scale_lr ------------------
# MMEngine's originals: mmengine_fixes (workaround 'lr_scaling') keeps them here when it
# installs the two functions below in their place.
MMENGINE_METHODS: Dict[str, Callable] = {}


def _wrappers(optim_wrapper) -> Dict[str, object]:
    from mmengine.optim import OptimWrapperDict
    if isinstance(optim_wrapper, OptimWrapperDict):
        return dict(optim_wrapper.items())
    return {'': optim_wrapper}


def _schedulers_built(schedulers) -> bool:
    from mmengine.optim.scheduler import _ParamScheduler
    if isinstance(schedulers, dict):
        return 'type' not in schedulers and any(map(_schedulers_built, schedulers.values()))
    if isinstance(schedulers, list):
        return any(map(_schedulers_built, schedulers))
    return isinstance(schedulers, _ParamScheduler)


def _mmengine_decides(auto_scale_lr, optim_wrapper) -> bool:
    """No rule named and no Lion: MMEngine's own code runs, exactly as it is, errors
    included (an AdamW or SGD config behaves as it always did)."""
    if isinstance(auto_scale_lr, dict) and 'rule' in auto_scale_lr:
        return False
    return not any(is_lion(w.optimizer) for w in _wrappers(optim_wrapper).values())


def _scale(owner, optim_wrapper, auto_scale_lr: dict, batch_size) -> None:
    """Scale each wrapper's lrs by its own plan."""
    wrappers = _wrappers(optim_wrapper)
    if _schedulers_built(getattr(owner, 'param_schedulers', None)):
        raise RuntimeError('auto_scale_lr must scale the lr before the parameter schedulers '
                           'are built: they store the initial lr')
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f'auto_scale_lr needs train_dataloader.batch_size (a positive int, '
                         f'the batch of one process), got {batch_size!r}')
    world_size = owner.world_size
    for name, wrapper in wrappers.items():
        accumulation = getattr(wrapper, '_accumulative_counts', 1)
        plan = plan_scaling(auto_scale_lr, wrapper.optimizer, world_size, batch_size,
                            accumulation)
        owner.logger.info(plan.describe(f'[{name}]' if name else ''))
        for group in wrapper.optimizer.param_groups:
            group['lr'] = group['lr'] * plan.factor


def _enabled(auto_scale_lr) -> bool:
    return bool(auto_scale_lr) and auto_scale_lr.get('enable', False)


def runner_scale_lr(self, optim_wrapper, auto_scale_lr: Optional[dict] = None) -> None:
    """``Runner.scale_lr`` with the rule of this module."""
    if _mmengine_decides(auto_scale_lr, optim_wrapper):
        return MMENGINE_METHODS['Runner.scale_lr'](self, optim_wrapper, auto_scale_lr)
    check_auto_scale_lr(auto_scale_lr)
    if not _enabled(auto_scale_lr):
        return None
    loader = self._train_dataloader
    batch_size = loader.get('batch_size') if isinstance(loader, dict) else loader.batch_size
    _scale(self, optim_wrapper, auto_scale_lr, batch_size)


def strategy_scale_lr(self) -> None:
    """``BaseStrategy._scale_lr`` (the FlexibleRunner's) with the rule of this module."""
    auto_scale_lr = self._auto_scale_lr
    if _mmengine_decides(auto_scale_lr, self.optim_wrapper):
        return MMENGINE_METHODS['BaseStrategy._scale_lr'](self)
    check_auto_scale_lr(auto_scale_lr)
    if not _enabled(auto_scale_lr):
        return None
    _scale(self, self.optim_wrapper, auto_scale_lr,
           self.dispatch_kwargs.get('train_micro_batch_size_per_gpu'))

