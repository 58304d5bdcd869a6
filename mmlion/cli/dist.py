"""Make ``torchrun`` training with MMEngine 0.10.7 work on CPU-only machines too.

MMEngine's ``pytorch`` launcher calls ``torch.cuda.set_device`` (which fails on a
CPU build) and its Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``
(which DDP refuses for CPU modules); DDP also refuses SyncBatchNorm on the CPU,
which MMDetection's configs ask for (``SyncBN``) and RTMDet turns on by itself when
the world is larger than one. Where no GPU is present this initialises the process
group itself with gloo, from the environment torchrun sets, asks for DDP without
device ids and for plain BN; with GPUs it changes nothing, and MMEngine does its
usual NCCL set-up, except after a torchrun restart (see :func:`_init_from_torchrun`).
"""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.config import Config

from mmlion.engine import mmengine_fixes
from mmlion.utils.config_error import ConfigError


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` (in place) and the process group for ``launcher``."""
    if launcher == 'none':
        return
    if launcher == 'pytorch':
        check_torchrun_environment()
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if not mmengine_fixes.without_gpu():
        if launcher == 'pytorch' and torchrun_restart() > 0 and not dist.is_initialized():
            torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
            _init_from_torchrun(dist_cfg.get('backend', 'nccl'), dist_cfg.get('timeout'))
        return
    if launcher != 'pytorch':
        raise ValueError(f"launcher={launcher!r}: on a machine without GPUs mmlion supports "
                         f"launcher='pytorch' (torchrun) or 'none'")
    backend = dist_cfg.get('backend', 'gloo')
    if backend != 'gloo':
        print(f"mmlion: no GPU here, using the 'gloo' backend instead of {backend!r}")
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        _init_from_torchrun('gloo', dist_cfg.get('timeout'))
    if 'strategy' not in cfg:  # the FlexibleRunner's strategy wraps the model itself
        wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                       broadcast_buffers=False)
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper
    if _without_sync_bn(cfg.model):
        print('mmlion: no GPU here, SyncBN in the model config replaced by BN '
              '(each process normalises over its own batch)')


# What torchrun sets for each worker, and MMEngine's and mmlion's set-up read.
TORCHRUN_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


def check_torchrun_environment() -> None:
    """``--launcher pytorch`` outside torchrun: say so, naming what is missing,
    instead of a KeyError from deep in the set-up."""
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ConfigError(
            f'--launcher pytorch: the environment variables torchrun sets are missing '
            f'({", ".join(missing)}). Start the run with torchrun (`bash '
            f'tools/dist_train.sh CONFIG NUM_PROCESSES`), or use --launcher none for one '
            f'process')


def torchrun_restart() -> int:
    """How many times torchrun has restarted the workers (0 on the first attempt)."""
    return int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))


def _init_from_torchrun(backend: str, timeout=None) -> None:
    """The default process group from the environment torchrun sets.

    After a restart, the key-value store torchrun's agent hands the workers still
    holds the previous attempt's keys (the dead ranks' addresses), and gloo would
    try to connect to those; each attempt therefore uses keys of its own."""
    kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
    rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    restart = torchrun_restart()
    if restart == 0:
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **kwargs)
        return
    agent_store = os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == str(True)
    store = dist.TCPStore(os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']),
                          world_size, is_master=not agent_store and rank == 0,
                          multi_tenant=True, **kwargs)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                            store=dist.PrefixStore(f'mmlion/attempt_{restart}', store),
                            **kwargs)


_SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'TorchSyncBN')


def _without_sync_bn(node) -> bool:
    """Replace SyncBN norm configs by BN and turn off RTMDet's ``use_syncbn``, in
    place; True where something changed."""
    changed = False
    if isinstance(node, dict):
        if node.get('type') in _SYNC_BN_TYPES:
            node['type'] = 'BN'
            changed = True
        if node.get('type') == 'RTMDet' and node.get('use_syncbn', True):
            node['use_syncbn'] = False
            changed = True
        for value in node.values():
            changed |= _without_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed |= _without_sync_bn(value)
    return changed


def teardown_distributed() -> None:
    """Destroy the process group, if there is one, before the interpreter exits.

    MMEngine never does; a gloo group left alive at exit can abort a rank in
    ``std::terminate`` ("terminate called without an active exception"), which
    torchrun then reports as a failed run after training has finished.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
