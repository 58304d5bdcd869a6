"""MMEngine's ``DeepSpeedStrategy`` (FlexibleRunner) as it should work with current
deepspeed and on CPU-only machines: ``type='mmlion.DeepSpeedStrategy'``; mmlion's
``tools/train.py`` uses it for ``type='DeepSpeedStrategy'`` too.

What it fixes in MMEngine 0.10.7 with deepspeed >= 0.19.7:

- MMEngine registers deepspeed's optimizers at construction and imports the 1-bit
  ones from ``deepspeed.runtime.fp16.onebit``, which deepspeed removed in 0.19.7
  (``ImportError``); the optimizers deepspeed still has are registered, the rest left
  out;
- ``init_dist`` calls ``torch.cuda.set_device`` whatever the machine; without a GPU,
  deepspeed's communication is set up on the gloo group that mmlion's
  ``setup_distributed`` has already made;
- Lion is a client optimizer deepspeed has not tested, which ZeRO refuses unless
  ``zero_allow_untested_optimizer`` is set: it is set (a config may still say False);
- saving and resuming skipped the runner's ``before_save_checkpoint`` and
  ``after_load_checkpoint`` hooks ("callback not supported yet"), so
  ``mmlion.ResumableCheckpointHook`` could not keep the RNG states: they now run.
deepspeed (0.19.8) clips gradients to norm 1.0 unless ``gradient_clipping`` says
otherwise; a config without it gets a warning, so the clipping is a stated choice.
"""
import importlib
from typing import List

import torch
import torch.distributed as dist
from mmengine._strategy import deepspeed as mmengine_deepspeed
from mmengine._strategy.deepspeed import DeepSpeedStrategy as MMEngineDeepSpeedStrategy
from mmengine.logging import print_log
from mmengine.registry import OPTIMIZERS

from mmlion.registry import STRATEGIES
from ._swap import swapped

__all__ = ['DeepSpeedStrategy']

# deepspeed's optimizers MMEngine registers, by the module each lives in.
_DEEPSPEED_OPTIMIZERS = {
    'deepspeed.ops.adam': ('DeepSpeedCPUAdam', 'FusedAdam'),
    'deepspeed.ops.lamb': ('FusedLamb',),
    'deepspeed.runtime.fp16.onebit': ('OnebitAdam', 'OnebitLamb', 'ZeroOneAdam'),
}


def register_deepspeed_optimizers() -> List[str]:
    """What MMEngine's function of this name does, for the optimizers this deepspeed
    still has."""
    registered = []
    for module_name, names in _DEEPSPEED_OPTIMIZERS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            if hasattr(module, name) and name not in OPTIMIZERS.module_dict:
                OPTIMIZERS.register_module(module=getattr(module, name))
                registered.append(name)
    return registered


@STRATEGIES.register_module()
class DeepSpeedStrategy(MMEngineDeepSpeedStrategy):
    """``mmengine._strategy.DeepSpeedStrategy`` with the fixes above; same arguments."""

    def __init__(self, **kwargs):
        with swapped(mmengine_deepspeed, 'register_deepspeed_optimizers',
                     register_deepspeed_optimizers):
            super().__init__(**kwargs)
        self.config.setdefault('zero_allow_untested_optimizer', True)
        if 'gradient_clipping' not in self.config:
            print_log('mmlion.DeepSpeedStrategy: gradient_clipping is not set, and deepspeed '
                      'clips gradients to norm 1.0 by default; set it (0.0: no clipping)',
                      logger='current', level=30)

    def save_checkpoint(self, filename: str, *, extra_ckpt=None, callback=None, **kwargs):
        if callback is not None:  # the runner's before_save_checkpoint hooks
            extra_ckpt = dict(extra_ckpt or {})
            callback(extra_ckpt)
        return super().save_checkpoint(filename, extra_ckpt=extra_ckpt, **kwargs)

    def resume(self, filename: str, *, callback=None, **kwargs) -> dict:
        checkpoint = super().resume(filename, **kwargs)
        if callback is not None:  # the runner's after_load_checkpoint hooks
            callback(checkpoint)
        return checkpoint

    def _setup_distributed(self, launcher=None, backend: str = 'nccl', **kwargs):
        if torch.cuda.is_available() or not dist.is_initialized():
            return super()._setup_distributed(launcher, backend, **kwargs)
        import deepspeed
        deepspeed.init_distributed(dist_backend=dist.get_backend(), auto_mpi_discovery=False)
