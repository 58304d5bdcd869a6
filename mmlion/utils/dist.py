"""Make ``torchrun`` training with MMEngine 0.10.7 work on CPU-only machines too.

MMEngine's ``pytorch`` launcher calls ``torch.cuda.set_device`` (which fails on a
CPU build) and its Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``
(which DDP refuses for CPU modules). Where no GPU is present this initialises the
process group itself with gloo, from the environment torchrun sets, and asks for
DDP without device ids; with GPUs it changes nothing, and MMEngine does its usual
NCCL set-up.
"""
import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` (in place) and the process group for ``launcher``."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f"launcher={launcher!r}: on a machine without GPUs mmlion supports "
                         f"launcher='pytorch' (torchrun) or 'none'")
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    backend = dist_cfg.get('backend', 'gloo')
    if backend != 'gloo':
        print(f"mmlion: no GPU here, using the 'gloo' backend instead of {backend!r}")
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        timeout = dist_cfg.get('timeout')
        kwargs = {} if timeout is None else dict(
            timeout=__import__('datetime').timedelta(seconds=timeout))
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']), **kwargs)
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                   broadcast_buffers=False)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
