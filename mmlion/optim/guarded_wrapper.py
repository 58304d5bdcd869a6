"""OptimWrappers that skip steps with non-finite gradients, for any optimizer.

``optim_wrapper=dict(type='mmlion.GuardedOptimWrapper', optimizer=dict(type='AdamW',
...), max_consecutive_skips=10)`` is MMEngine's ``OptimWrapper`` with the non-finite
guard of :mod:`mmlion.optim.nonfinite` between backward and the optimizer's step, the
way ``AmpOptimWrapper`` puts its GradScaler there: gradient accumulation, clipping and
the Runner's checkpoints work unchanged. With ``clip_grad`` (norm) the guard reads the
total norm that clipping computes anyway, so it costs no extra pass; without it, one
read of the gradients. All ranks decide together. ``mmlion.GuardedAmpOptimWrapper``
is the same on top of ``AmpOptimWrapper``: the GradScaler unscales, the guard decides
(an overflow is a non-finite gradient like any other), and the scaler lowers its scale
after a skipped step as it always does. ``tools/train.py --amp`` picks it for a
guarded config.
"""
import functools
from typing import Callable, Optional

from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmlion.registry import OPTIM_WRAPPERS
from .nonfinite import NonFiniteGuard
from .validation import check_max_consecutive_skips

__all__ = ['GuardedOptimWrapper', 'GuardedAmpOptimWrapper']


class _NonFiniteGuardMixin:
    """What both wrappers add to MMEngine's: the guard, its counts in the state dict
    (key ``'nonfinite'``, as Lion's own), and ``train/nonfinite_skips`` in the logs."""

    def __init__(self, *args, max_consecutive_skips: Optional[int] = 10, **kwargs):
        super().__init__(*args, **kwargs)
        check_max_consecutive_skips(max_consecutive_skips)
        if getattr(self.optimizer, 'defaults', {}).get('skip_nonfinite'):
            raise ValueError(
                f'Invalid skip_nonfinite: {type(self).__name__} already guards the step, and '
                f'optim_wrapper.optimizer has skip_nonfinite=True too; remove one of them')
        self.max_consecutive_skips = max_consecutive_skips
        self.nonfinite_guard = NonFiniteGuard(owner=type(self).__name__)
        self._param_names = {}
        self._clip_result = None
        if self.clip_grad_kwargs:
            self.set_clip_func(self.clip_func)

    def set_clip_func(self, clip) -> None:
        """Clip with ``clip`` (e.g. a strategy's norm over all shards), keeping the
        norm it returns for the guard."""

        def clip_and_keep_norm(*args, **kwargs):
            self._clip_result = clip(*args, **kwargs)  # None for clip-by-value
            return self._clip_result

        self.clip_func = clip_and_keep_norm

    def initialize_count_status(self, model, init_counts: int, max_counts: int) -> None:
        # The train loop hands the model over here: keep its names for the skip log.
        self._param_names = {id(p): n for n, p in model.named_parameters()}
        super().initialize_count_status(model, init_counts, max_counts)

    def _guarded_step(self, take_step: Callable, **kwargs) -> None:
        """Clip (if set), ask the guard (its one door), then ``take_step(**kwargs)`` where
        every rank's gradients are finite, nothing where some are not (or, where the step
        reads the verdict on the device, ``take_step(skip_if=flag, **kwargs)``)."""
        self._clip_result = None
        if self.clip_grad_kwargs:
            self._clip_grad()
        params = [p for g in self.optimizer.param_groups for p in g['params']
                  if p.grad is not None]
        guards_on_device = getattr(self.optimizer, 'guards_on_device', None)
        take, skip_if = self.nonfinite_guard.decide(
            [p.grad for p in params], self.max_consecutive_skips,
            on_device=guards_on_device is not None and guards_on_device(),
            norm=self._clip_result,
            describe=lambda i: self._param_names.get(id(params[i]), 'a parameter'))
        if take and skip_if is None:
            take_step(**kwargs)
        elif take:
            take_step(skip_if=skip_if, **kwargs)
        self._log_skips()

    def _log_skips(self) -> None:
        self.message_hub.update_scalar('train/nonfinite_skips', self.nonfinite_guard.skipped)

    def state_dict(self) -> dict:
        return self.nonfinite_guard.save_into(super().state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(self.nonfinite_guard.load_from(state_dict))


@OPTIM_WRAPPERS.register_module()
class GuardedOptimWrapper(_NonFiniteGuardMixin, OptimWrapper):
    """``OptimWrapper`` that skips steps whose gradients hold a NaN or an Inf.

    A skipped step leaves parameters and optimizer state bitwise unchanged; the
    gradients are zeroed as after any step. Skips are logged with the first bad
    parameter's name and counted (``train/nonfinite_skips``, and the checkpoint's
    ``optimizer['nonfinite']``).

    Args:
        max_consecutive_skips (int, optional): Raise ``FloatingPointError`` after
            this many skips in a row; None never raises. Defaults to 10.
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).

    Example:
        >>> optim_wrapper = dict(
        ...     type='mmlion.GuardedOptimWrapper', max_consecutive_skips=10,
        ...     optimizer=dict(type='Lion', lr=1e-4, weight_decay=0.5),
        ...     clip_grad=dict(max_norm=1.0))
    """

    def step(self, **kwargs) -> None:
        self._guarded_step(self.optimizer.step, **kwargs)


@OPTIM_WRAPPERS.register_module()
class GuardedAmpOptimWrapper(_NonFiniteGuardMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` with the non-finite guard.

    The GradScaler unscales the gradients first (so that clipping and the guard read
    them as they are), then the guard decides as in :class:`GuardedOptimWrapper`: a step
    whose gradients hold a NaN or an Inf, an fp16 overflow included, is skipped, counted
    and logged, and ``max_consecutive_skips`` in a row raise; the scaler lowers its
    dynamic scale after such a step as it always does. (A static ``loss_scale``
    overflowing is counted too.)
    """

    def step(self, **kwargs) -> None:
        if not self.loss_scaler.is_enabled():
            self._guarded_step(self.optimizer.step, **kwargs)
            return
        self.loss_scaler.unscale_(self.optimizer)
        self._guarded_step(functools.partial(self.loss_scaler.step, self.optimizer), **kwargs)
        self.loss_scaler.update(self._scale_update_param)
