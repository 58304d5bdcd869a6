"""MMEngine's ``FSDPStrategy`` (FlexibleRunner) as it should work with current torch and
on CPU-only machines: ``type='mmlion.FSDPStrategy'``; mmlion's ``tools/train.py`` uses
it for ``type='FSDPStrategy'`` too, so an upstream config runs unedited.

What it fixes in MMEngine 0.10.7:

- without a GPU, the model wrapper gets ``device_id=torch.device('cpu')`` (MMEngine
  passes ``LOCAL_RANK``, a CUDA device index) and full state dicts are gathered
  without ``offload_to_cpu`` (with it, rank 0 segfaulted at save on CPU tensors);
- gradient clipping (``clip_grad=dict(max_norm=...)``) took the norm of each rank's
  shards alone (``torch.nn.utils.clip_grad_norm_`` on FSDP's local views), so every
  rank clipped by another factor; it now takes the norm over all shards
  (``FSDP.clip_grad_norm_``), as DDP's clipping does;
- ``FSDP.optim_state_dict_to_load`` is called with an older torch's argument order
  ``(optim_state_dict, model, optim)``; current torch takes ``(model, optim,
  optim_state_dict)`` and raised ``TypeError`` at resume and at the optimizer
  rebuild.
The process group comes from mmlion's ``setup_distributed`` (gloo on CPU), which
``tools/train.py`` calls before the runner is built.
"""
import torch
from mmengine._strategy import fsdp as mmengine_fsdp
from mmengine._strategy.fsdp import FSDPStrategy as MMEngineFSDPStrategy
from torch.distributed.fsdp import FullOptimStateDictConfig, FullStateDictConfig
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from mmlion.registry import STRATEGIES
from ._swap import swapped

__all__ = ['FSDPStrategy']


class _FSDPOldArgumentOrder(FSDP):
    """FSDP with ``optim_state_dict_to_load`` taking MMEngine's argument order."""

    @staticmethod
    def optim_state_dict_to_load(optim_state_dict, model, optim, *args, **kwargs):
        return FSDP.optim_state_dict_to_load(model, optim, optim_state_dict, *args, **kwargs)


def _mmengine_argument_order():
    """While MMEngine's code runs, its ``FSDP`` name takes its argument order."""
    return swapped(mmengine_fsdp, 'FSDP', _FSDPOldArgumentOrder)


@STRATEGIES.register_module()
class FSDPStrategy(MMEngineFSDPStrategy):
    """``mmengine._strategy.FSDPStrategy`` with the fixes above; same arguments."""

    def __init__(self, *args, model_wrapper=None, **kwargs):
        if not torch.cuda.is_available():
            model_wrapper = dict(model_wrapper or dict(type='MMFullyShardedDataParallel'))
            model_wrapper.setdefault('device_id', torch.device('cpu'))
        super().__init__(*args, model_wrapper=model_wrapper, **kwargs)

    def _init_state_dict_cfg(self, state_dict_cfg) -> None:
        super()._init_state_dict_cfg(state_dict_cfg)
        if not torch.cuda.is_available() and self._is_full_state_dict():
            self.state_dict_config = FullStateDictConfig(rank0_only=True, offload_to_cpu=False)
            self.optim_state_dict_config = FullOptimStateDictConfig(rank0_only=True,
                                                                    offload_to_cpu=False)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        with _mmengine_argument_order():
            super().load_optim_state_dict(state_dict)

    def build_optim_wrapper(self, *args, **kwargs):
        with _mmengine_argument_order():
            optim_wrapper = super().build_optim_wrapper(*args, **kwargs)
        if getattr(optim_wrapper, 'grad_name', None) == 'grad_norm':
            self._clip_over_all_shards(optim_wrapper)
        return optim_wrapper

    def _clip_over_all_shards(self, optim_wrapper) -> None:
        model = self.model

        def clip_grad_norm_(params, max_norm, norm_type=2.0, **unused):
            return model.clip_grad_norm_(max_norm, norm_type)

        setter = getattr(optim_wrapper, 'set_clip_func', None)
        if setter is not None:  # mmlion's guarded wrappers keep the norm
            setter(clip_grad_norm_)
        else:
            optim_wrapper.clip_func = clip_grad_norm_
