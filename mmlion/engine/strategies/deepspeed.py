"""MMEngine's ``DeepSpeedStrategy`` (FlexibleRunner) as it should work with current
deepspeed and on CPU-only machines: ``type='mmlion.DeepSpeedStrategy'``; mmlion's
``tools/train.py`` uses it for ``type='DeepSpeedStrategy'`` too.

It applies the workarounds of :mod:`mmlion.engine.mmengine_fixes` that concern it, each
only where its bug is in the installed code: ``deepspeed_onebit`` (MMEngine imports
1-bit optimizers deepspeed removed), ``deepspeed_callbacks`` (saving and resuming
dropped the runner's ``before_save_checkpoint`` and ``after_load_checkpoint`` hooks, so
``mmlion.RngStateHook`` could not keep the RNG states); and on a machine
without a GPU, deepspeed's communication runs on the gloo group mmlion's
``setup_distributed`` made.

Two settings of its own: Lion is a client optimizer deepspeed has not tested, which
ZeRO refuses unless ``zero_allow_untested_optimizer`` is set (it is, unless a config
says False); and deepspeed (0.19.8) clips gradients to norm 1.0 unless
``gradient_clipping`` says otherwise, so a config without it gets a warning.
"""
import torch.distributed as dist
from mmengine._strategy.deepspeed import DeepSpeedStrategy as MMEngineDeepSpeedStrategy
from mmengine.logging import print_log

from mmlion.registry import STRATEGIES
from .. import mmengine_fixes

__all__ = ['DeepSpeedStrategy']


@STRATEGIES.register_module()
class DeepSpeedStrategy(MMEngineDeepSpeedStrategy):
    """``mmengine._strategy.DeepSpeedStrategy`` with the fixes above; same arguments."""

    def __init__(self, **kwargs):
        with mmengine_fixes.deepspeed_optimizers_registered():
            super().__init__(**kwargs)
        self.config.setdefault('zero_allow_untested_optimizer', True)
        if 'gradient_clipping' not in self.config:
            print_log('mmlion.DeepSpeedStrategy: gradient_clipping is not set, and deepspeed '
                      'clips gradients to norm 1.0 by default; set it (0.0: no clipping)',
                      logger='current', level=30)

    def save_checkpoint(self, filename: str, *, extra_ckpt=None, callback=None, **kwargs):
        if not mmengine_fixes.needed('deepspeed_callbacks'):
            return super().save_checkpoint(filename, extra_ckpt=extra_ckpt,
                                           callback=callback, **kwargs)
        if callback is not None:  # the runner's before_save_checkpoint hooks
            extra_ckpt = dict(extra_ckpt or {})
            callback(extra_ckpt)
        return super().save_checkpoint(filename, extra_ckpt=extra_ckpt, **kwargs)

    def resume(self, filename: str, *, callback=None, **kwargs) -> dict:
        if not mmengine_fixes.needed('deepspeed_callbacks'):
            return super().resume(filename, callback=callback, **kwargs)
        checkpoint = super().resume(filename, **kwargs)
        if callback is not None:  # the runner's after_load_checkpoint hooks
            callback(checkpoint)
        return checkpoint

    def _setup_distributed(self, launcher=None, backend: str = 'nccl', **kwargs):
        if not mmengine_fixes.without_gpu() or not dist.is_initialized():
            return super()._setup_distributed(launcher, backend, **kwargs)
        import deepspeed
        deepspeed.init_distributed(dist_backend=dist.get_backend(), auto_mpi_discovery=False)
