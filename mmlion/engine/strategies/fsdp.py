"""MMEngine's ``FSDPStrategy`` (FlexibleRunner) as it should work with current torch and
on CPU-only machines: ``type='mmlion.FSDPStrategy'``; mmlion's ``tools/train.py`` uses
it for ``type='FSDPStrategy'`` too, so an upstream config runs unedited.

On a machine without a GPU (``mmengine_fixes.without_gpu()``) the model wrapper gets
``device_id=torch.device('cpu')`` instead of ``LOCAL_RANK``, and full state dicts are
gathered without ``offload_to_cpu``, with which rank 0 segfaulted at save. It applies
the workarounds of :mod:`mmlion.engine.mmengine_fixes` that concern it, each only where
its bug is in the installed code: ``fsdp_clip_local_shards`` (gradient clipping takes
the norm over all shards, as DDP's clipping does, instead of each rank's own) and
``fsdp_argument_order`` (MMEngine's calls of ``FSDP.optim_state_dict_to_load`` get
torch's argument order). The process
group comes from mmlion's ``setup_distributed`` (gloo on CPU), which ``tools/train.py``
calls before the runner is built.
"""
import torch
from mmengine._strategy.fsdp import FSDPStrategy as MMEngineFSDPStrategy
from torch.distributed.fsdp import FullOptimStateDictConfig, FullStateDictConfig

from mmlion.registry import STRATEGIES
from .. import mmengine_fixes

__all__ = ['FSDPStrategy']


@STRATEGIES.register_module()
class FSDPStrategy(MMEngineFSDPStrategy):
    """``mmengine._strategy.FSDPStrategy`` with the fixes above; same arguments."""

    def __init__(self, *args, model_wrapper=None, **kwargs):
        if mmengine_fixes.without_gpu():
            model_wrapper = dict(model_wrapper or dict(type='MMFullyShardedDataParallel'))
            model_wrapper.setdefault('device_id', torch.device('cpu'))
        super().__init__(*args, model_wrapper=model_wrapper, **kwargs)

    def _init_state_dict_cfg(self, state_dict_cfg) -> None:
        super()._init_state_dict_cfg(state_dict_cfg)
        if mmengine_fixes.without_gpu() and self._is_full_state_dict():
            self.state_dict_config = FullStateDictConfig(rank0_only=True, offload_to_cpu=False)
            self.optim_state_dict_config = FullOptimStateDictConfig(rank0_only=True,
                                                                    offload_to_cpu=False)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        with mmengine_fixes.fsdp_old_argument_order():
            super().load_optim_state_dict(state_dict)

    def build_optim_wrapper(self, *args, **kwargs):
        with mmengine_fixes.fsdp_old_argument_order():
            optim_wrapper = super().build_optim_wrapper(*args, **kwargs)
        if mmengine_fixes.needed('fsdp_clip_local_shards') and \
                getattr(optim_wrapper, 'grad_name', None) == 'grad_norm':
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
