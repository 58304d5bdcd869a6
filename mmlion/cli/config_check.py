"""Check a training config before anything is built, so that a wrong setting fails
in a second with a message that names the key and the value, instead of minutes in
(or never, silently). ``tools/train.py`` calls :func:`check_config`; it reads files
but writes none.
"""
import glob
import os.path as osp
import zipfile

import torch
from mmengine.config import Config
from mmengine.device import (is_cuda_available, is_mlu_available, is_musa_available,
                             is_npu_available)
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from mmlion.engine.hooks import ConfigCheckHook
from mmlion.engine.lr_scaling import check_auto_scale_lr
from mmlion.engine.mmengine_fixes import is_local_path
from mmlion.optim import Lion, ZeroRedundancyOptimizer
from mmlion.optim.validation import foreign_state_owner
from mmlion.registry import find_registered
from mmlion.utils.checkpoint import load_checkpoint_file
from mmlion.utils.config_error import ConfigError
from mmlion.utils.data import dataset_configs

from .key_check import check_config_keys, optimizer_classes
from .loop_check import check_loops

__all__ = ['ConfigError', 'add_config_check_hook', 'check_config', 'check_checkpoint',
           'read_checkpoint']

_DECAY_MULTS = ('bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult', 'flat_decay_mult')
_ZERO_OWN_KEYS = ('type', 'optimizer_type', 'process_group', 'parameters_as_bucket_view',
                  'overlap_with_ddp', 'skip_nonfinite', 'max_consecutive_skips')


def _check_optimizer(cfg: Config) -> None:
    optim_wrapper = cfg.get('optim_wrapper')
    if not optim_wrapper or 'optimizer' not in optim_wrapper:
        return
    optimizer = dict(optim_wrapper['optimizer'])
    key = 'optim_wrapper.optimizer'
    type_name = optimizer.get('type')
    cls, inner = optimizer_classes(cfg, optimizer)
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    uses_mmlion = cls in (Lion, ZeroRedundancyOptimizer) or str(type_name).startswith('mmlion.')
    if uses_mmlion and not any(i == 'mmlion' or i.startswith('mmlion.') for i in imports):
        raise ConfigError(
            f"{key}.type={type_name!r} needs custom_imports=dict(imports=['mmlion']) in the "
            f"config (custom_imports={cfg.get('custom_imports')!r}): without it MMDetection's "
            f"tools and `mim train` fail to find 'Lion', or build another package's Lion")
    kwargs = {k: v for k, v in optimizer.items() if k != 'type'}
    if cls is ZeroRedundancyOptimizer:
        key = f"{key} (optimizer_type={optimizer.get('optimizer_type', 'Lion')!r})"
        kwargs = {k: v for k, v in optimizer.items() if k not in _ZERO_OWN_KEYS}
    if inner is Lion:
        try:  # Lion validates every setting; a one-element parameter costs nothing
            Lion([torch.nn.Parameter(torch.zeros(1))], **kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f'{key}: {e}') from None
    paramwise = optim_wrapper.get('paramwise_cfg') or {}
    if 'weight_decay' not in optimizer:
        mults = [k for k in _DECAY_MULTS if k in paramwise]
        mults += [f'custom_keys[{name!r}].decay_mult'
                  for name, rule in (paramwise.get('custom_keys') or {}).items()
                  if isinstance(rule, dict) and 'decay_mult' in rule]
        if mults:
            name = mults[0]
            value = paramwise.get(name, None) if name in _DECAY_MULTS else \
                paramwise['custom_keys'][name.split("'")[1]]['decay_mult']
            raise ConfigError(
                f'optim_wrapper.paramwise_cfg.{name}={value!r} multiplies the weight decay, '
                f'but {key} sets no weight_decay; set {key}.weight_decay (Lion: 3-10x '
                f"AdamW's) or remove the multiplier")
    counts = optim_wrapper.get('accumulative_counts', 1)
    if isinstance(counts, bool) or not isinstance(counts, int) or counts < 1:
        raise ConfigError(f'optim_wrapper.accumulative_counts={counts!r} (must be an int >= 1)')
    clip = optim_wrapper.get('clip_grad')
    if clip is not None and not isinstance(clip, dict):
        raise ConfigError(f'optim_wrapper.clip_grad={clip!r} (must be None or a dict such as '
                          f'dict(max_norm=1.0))')
    if clip is not None:
        limit_key = 'clip_value' if clip.get('type') == 'value' else 'max_norm'
        limit = clip.get(limit_key)
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise ConfigError(f'optim_wrapper.clip_grad.{limit_key}={limit!r} (must be a '
                              f'number > 0)')
        if limit_key == 'max_norm' and not _is_norm_type(clip.get('norm_type', 2)):
            raise ConfigError(f"optim_wrapper.clip_grad.norm_type={clip['norm_type']!r} (must be "
                              f"a number > 0 such as 2 for the L2 norm, or 'inf'; torch's "
                              f"clip_grad_norm_ reads it with float())")
    _check_paramwise_mults(paramwise)


# paramwise_cfg's multipliers (MMEngine's DefaultOptimWrapperConstructor), each a
# number >= 0: a negative one makes a negative lr or decay that the optimizer then
# refuses without naming the multiplier.
_PARAMWISE_MULTS = ('bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult',
                    'flat_decay_mult', 'dcn_offset_lr_mult')
_CUSTOM_KEY_MULTS = ('lr_mult', 'decay_mult')


def _is_norm_type(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return float(value) > 0  # 'inf' and float('inf') included
    except (TypeError, ValueError):
        return False


def _check_mult(key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f'{key}={value!r} (a multiplier of the lr or weight decay: must be a '
                          f'number >= 0)')


def _check_paramwise_mults(paramwise: dict) -> None:
    key = 'optim_wrapper.paramwise_cfg'
    for name in _PARAMWISE_MULTS:
        if name in paramwise:
            _check_mult(f'{key}.{name}', paramwise[name])
    for pattern, rule in (paramwise.get('custom_keys') or {}).items():
        if not isinstance(rule, dict):
            raise ConfigError(f'{key}.custom_keys[{pattern!r}]={rule!r} (must be a dict such '
                              f'as dict(lr_mult=0.1, decay_mult=0))')
        for name in _CUSTOM_KEY_MULTS:
            if name in rule:
                _check_mult(f'{key}.custom_keys[{pattern!r}].{name}', rule[name])


def _local(path: str) -> bool:
    return is_local_path(path)


def _check_data(cfg: Config) -> None:
    for key, dataset in dataset_configs(cfg):
        root = dataset.get('data_root') or ''
        if not _local(root):
            continue
        ann_file = dataset.get('ann_file')
        if ann_file:
            path = ann_file if osp.isabs(ann_file) or not root else osp.join(root, ann_file)
            if not osp.isfile(path):
                raise ConfigError(f'{key}.ann_file={ann_file!r}: no such file {path!r} '
                                  f'(data_root={root!r}){_preparation_hint(cfg, root)}')
        prefix = dataset.get('data_prefix') or {}
        for name in ('img', 'img_path'):
            folder = prefix.get(name) if isinstance(prefix, dict) else None
            if folder:
                path = folder if osp.isabs(folder) or not root else osp.join(root, folder)
                if not osp.isdir(path):
                    raise ConfigError(f'{key}.data_prefix.{name}={folder!r}: no such folder '
                                      f'{path!r} (data_root={root!r})'
                                      f'{_preparation_hint(cfg, root)}')


def _preparation_hint(cfg: Config, data_root: str) -> str:
    """The config's own ``data_preparation`` command (a template that may name
    ``{data_root}``), where it has one: how to make the missing data."""
    template = cfg.get('data_preparation')
    if not isinstance(template, str):
        return ''
    return f'; make it with `{template.replace("{data_root}", data_root)}`'


def read_checkpoint(path: str, key: str):
    """Load ``path`` on the CPU; raise :class:`ConfigError` naming ``key`` and the file
    when it is missing, a folder, truncated or corrupt."""
    if osp.isdir(path):
        inside = sorted(osp.basename(p) for p in glob.glob(osp.join(path, '*.pth')))
        hint = f' ({len(inside)} checkpoints inside, e.g. {inside[-1]!r})' if inside else ''
        raise ConfigError(f'{key}: {path!r} is a folder{hint}; name a checkpoint file in it, or '
                          f'for the latest one in the work dir use --resume without a path')
    if not osp.isfile(path):
        raise ConfigError(f'{key}: checkpoint {path!r} does not exist')
    is_zip = zipfile.is_zipfile(path)
    try:
        # mmap reads only what is needed (zip format); older files load whole.
        return load_checkpoint_file(path, mmap=is_zip)
    except Exception as e:  # zip, pickle and EOF errors all mean the same here
        others = sorted(p for p in glob.glob(osp.join(osp.dirname(path) or '.', '*.pth'))
                        if osp.abspath(p) != osp.abspath(path))
        hint = f'; other checkpoints there: {others}' if others else ''
        reason = (f'{type(e).__name__}: {str(e).splitlines()[0][:160]}' if is_zip else
                  'not the zip archive torch.save writes, nor a legacy checkpoint')
        raise ConfigError(f'{key}: checkpoint {path!r} ({osp.getsize(path)} bytes) cannot be '
                          f'read; it is truncated or corrupt ({reason}){hint}') from None


def check_checkpoint(path: str, key: str = 'resume', optimizer_type=None) -> dict:
    """Load ``path`` as a checkpoint and check it can be resumed; raise
    :class:`ConfigError` naming the file and what is wrong. Returns it."""
    checkpoint = read_checkpoint(path, key)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        keys = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint)
        raise ConfigError(f"{key}: {path!r} is not an MMEngine checkpoint (no 'state_dict'; "
                          f'it has {keys})')
    saved = checkpoint.get('optimizer')
    if optimizer_type is Lion and isinstance(saved, dict) and 'state' in saved:
        for index, entry in saved['state'].items():
            if foreign_state_owner(entry) is not None:
                raise ConfigError(
                    f'{key}: checkpoint {path!r} holds the state of another optimizer '
                    f"(parameter {index} has {sorted(entry)}; Lion keeps ['exp_avg']). To "
                    f'start Lion from its weights use load_from={path!r} with resume=False')
    return checkpoint


def _check_resume(cfg: Config) -> None:
    """``resume`` and ``load_from``: the checkpoint is there and reads. A folder is
    a checkpoint only for a FlexibleRunner strategy (DeepSpeed, sharded FSDP), which
    reads it itself."""
    path, key = cfg.get('load_from'), 'load_from'
    if cfg.get('resume'):
        key = 'load_from (resume=True)'
        if path is None:
            pointer = osp.join(cfg.get('work_dir') or '', 'last_checkpoint')
            if not osp.isfile(pointer):
                return  # nothing to resume: MMEngine starts afresh, and says so
            with open(pointer) as f:
                path, key = f.read().strip(), f'resume=True ({pointer})'
    if not path or not _local(path) or (osp.isdir(path) and cfg.get('strategy')):
        return
    if not cfg.get('resume'):
        read_checkpoint(path, key)  # weights only: any state dict MMEngine can load
        return
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer')
    check_checkpoint(path, key, optimizer_classes(cfg, optimizer)[1] if optimizer else None)


def check_config(cfg: Config) -> None:
    """Raise :class:`ConfigError` for settings that cannot train; touches no file."""
    check_config_keys(cfg)
    check_loops(cfg)
    _check_optimizer(cfg)
    _check_amp(cfg)
    _check_auto_scale_lr(cfg)
    _check_data(cfg)
    _check_resume(cfg)


def add_config_check_hook(cfg: Config) -> None:
    """Add :class:`~mmlion.engine.ConfigCheckHook` (the checks that need the model, the
    loaded checkpoint or the metrics) to ``custom_hooks``, unless it is there."""
    hooks = list(cfg.get('custom_hooks') or [])
    names = ('mmlion.ConfigCheckHook', 'ConfigCheckHook', ConfigCheckHook)
    if not any(isinstance(hook, dict) and hook.get('type') in names for hook in hooks):
        hooks.append(dict(type='mmlion.ConfigCheckHook'))
    cfg.custom_hooks = hooks


def _check_amp(cfg: Config) -> None:
    """MMEngine's AmpOptimWrapper asserts a GPU (or NPU, MLU, MUSA) when it is built,
    after the data; say so first, naming the wrapper."""
    optim_wrapper = cfg.get('optim_wrapper') or {}
    name = optim_wrapper.get('type', 'OptimWrapper') if isinstance(optim_wrapper, dict) else None
    wrapper = find_registered(OPTIM_WRAPPERS, name, cfg.get('default_scope'))
    if not (isinstance(wrapper, type) and issubclass(wrapper, AmpOptimWrapper)):
        return
    if any(available() for available in (is_cuda_available, is_npu_available,
                                         is_mlu_available, is_musa_available)):
        return
    cuda = torch.version.cuda
    raise ConfigError(
        f'optim_wrapper.type={name!r} (mixed precision, set by the config or by --amp) '
        f'needs a GPU, NPU, MLU or MUSA device, and this machine has none (torch '
        f'{torch.__version__}, {"CUDA " + cuda if cuda else "built without CUDA"}). '
        f'Leave out --amp, or use optim_wrapper.type=\'OptimWrapper\' here')


def _check_auto_scale_lr(cfg: Config) -> None:
    try:
        check_auto_scale_lr(cfg.get('auto_scale_lr'))
    except ValueError as error:
        raise ConfigError(str(error)) from None
