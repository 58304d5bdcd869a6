"""Bad configs, checkpoints and command lines: each row of docs/bad_input.md that
mmlion.cli (check_config, as tools/train.py runs it) or the launch scripts catch (see
tests/bad_input.py)."""
import os
from unittest import mock

import pytest
import torch

from bad_input import Case, adamw_state, bad_input_test
from helpers import DEMO, hold_in_subprocess, python_tool, run_tool
from mmlion.cli import ConfigError, check_config, setup_distributed

def config_case(**options):
    return lambda ctx, _: check_config(ctx.config(**options))


def _zero_unknown_type(ctx, path=None):
    check_config(ctx.config(**{'optim_wrapper.optimizer.type': 'mmlion.ZeroRedundancyOptimizer',
                               'optim_wrapper.optimizer.optimizer_type': 'Loin'}))


def _no_custom_imports(ctx, path=None):
    text = ("_base_ = '{}'\ncustom_imports = dict(imports=[], allow_failed_imports=False)\n"
            .format(DEMO))
    check_config(ctx.config(text=text))


def _decay_mult_custom_key(ctx, path=None):
    cfg = ctx.config()
    cfg.optim_wrapper.optimizer.pop('weight_decay')
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys={'backbone': dict(decay_mult=0.1)})
    check_config(cfg)


def _decay_mult(ctx, path=None):
    cfg = ctx.config()
    cfg.optim_wrapper.optimizer.pop('weight_decay')
    check_config(cfg)


def _resume(ctx, path):
    check_config(ctx.config(resume=True, load_from=path))


def _truncated(ctx):
    path = ctx.tmp / 'epoch_2.pth'
    data = open(ctx.checkpoint(), 'rb').read()
    path.write_bytes(data[:len(data) // 2])
    return ctx.watch(path)


def _corrupt(ctx):
    path = ctx.tmp / 'epoch_2.pth'
    path.write_bytes(os.urandom(4096))
    return ctx.watch(path)


def _other_optimizer_ckpt(ctx):
    return ctx.checkpoint(adamw_state(ctx), name='adamw_epoch_1.pth')


def _pointer_to_truncated(ctx):
    path = _truncated(ctx)
    work_dir = ctx.tmp / 'work_dir'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text(path)
    ctx.watch(work_dir / 'last_checkpoint')


def _resume_auto_truncated(ctx, path=None):
    check_config(ctx.config(resume=True))


def _train_tool_truncated(ctx, path=None):
    """The same through tools/train.py: it fails before building the Runner."""
    out = python_tool('tools/train.py', DEMO, '--resume', path, '--work-dir',
                      ctx.tmp / 'tool_work_dir', timeout=300, expect_rc=None)
    assert 'Runner' not in out  # nothing was built
    raise ConfigError(out.strip().splitlines()[-1])


def _folder_of_checkpoints(ctx):
    (ctx.tmp / 'run').mkdir()
    ctx.checkpoint(name='run/epoch_1.pth')
    return str(ctx.tmp / 'run')


def _train_tool_resume_folder(ctx, folder):
    """``tools/train.py CONFIG --resume WORK_DIR`` (a folder, not a file)."""
    out = python_tool('tools/train.py', DEMO, '--resume', folder, '--work-dir',
                      ctx.tmp / 'tool_work_dir', timeout=300, expect_rc=None)
    assert 'Runner' not in out  # nothing was built
    raise ConfigError(out.strip().splitlines()[-1])


def _load_from(ctx, path):
    check_config(ctx.config(load_from=path))


def _epoch_scheduler_under_iterations(ctx, _):
    text = (f"_base_ = '{DEMO}'\n"
            "train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=100, "
            "val_interval=50)\n"
            "param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, eta_min=0)]\n")
    check_config(ctx.config(text=text))


def _amp_without_gpu(ctx, _):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: AMP is fine here')
    check_config(ctx.config(**{'optim_wrapper.type': 'mmlion.GuardedAmpOptimWrapper'}))


def _launcher_outside_torchrun(ctx, _):
    names = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
    with mock.patch.dict(os.environ, {'LOCAL_RANK': '0'}):
        for name in names:
            os.environ.pop(name, None)
        setup_distributed(ctx.config(), 'pytorch')


def _train_tool_launcher(ctx, _):
    """``tools/train.py CONFIG --launcher pytorch`` typed without torchrun."""
    assert 'RANK' not in os.environ  # as in a shell where torchrun started nothing
    out = python_tool('tools/train.py', DEMO, '--launcher', 'pytorch', '--work-dir',
                      ctx.tmp / 'tool_work_dir', timeout=300, expect_rc=None)
    assert 'Runner' not in out  # nothing was built
    raise ConfigError(out.strip().splitlines()[-1])


def _train_tool_work_dir_in_use(ctx, _):
    """A second ``tools/train.py`` on the work dir a live run holds (the first run is
    a process that took the lock as tools/train.py takes it, and sleeps)."""
    work_dir = ctx.tmp / 'tool_work_dir'
    holder = hold_in_subprocess(work_dir)
    try:
        out = python_tool('tools/train.py', DEMO, '--work-dir', work_dir, timeout=300,
                          expect_rc=None)
    finally:
        holder.kill()
        holder.wait()
    assert 'Runner' not in out and f'pid {holder.pid}' in out
    raise ConfigError(out.strip().splitlines()[-1])


def _dist_train_zero(ctx, _):
    out = run_tool(['bash', 'tools/dist_train.sh', DEMO, '0'], timeout=60, expect_rc=None)
    raise SystemExit(out.strip().splitlines()[-1])


CASES = [
    Case('config-lr', config_case(**{'optim_wrapper.optimizer.lr': -4e-4}), ConfigError,
         ('optim_wrapper.optimizer', 'lr=-0.0004'),
         input='`optim_wrapper.optimizer.lr=-4e-4`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('config-unknown-keyword', config_case(**{'optim_wrapper.optimizer.eps': 1e-8}),
         ConfigError, ('optim_wrapper.optimizer', 'eps=1e-08'),
         input='`optim_wrapper.optimizer.eps=1e-8`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('config-lr-typo', config_case(**{'optim_wrapper.optimizer.lr': 1e4}), ConfigError,
         ('optim_wrapper.optimizer', 'lr=10000.0', 'lr * weight_decay'),
         input='`optim_wrapper.optimizer.lr=1e4` (a typo for 1e-4)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('config-betas', config_case(**{'optim_wrapper.optimizer.betas': (0.9, 0.99, 0.1)}),
         ConfigError, ('optim_wrapper.optimizer', 'betas=(0.9, 0.99, 0.1)'),
         input='`optim_wrapper.optimizer.betas=(0.9, 0.99, 0.1)`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('config-unknown-type', config_case(**{'optim_wrapper.optimizer.type': 'Loin'}),
         ConfigError, ("optim_wrapper.optimizer.type='Loin'", "'Lion'"),
         input="`optim_wrapper.optimizer.type='Loin'`",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('zero-unknown-type', _zero_unknown_type, ConfigError,
         ("optimizer_type='Loin'", "'Lion'"),
         input="ZeRO with `optimizer_type='Loin'`",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('no-custom-imports', _no_custom_imports, ConfigError,
         ("optim_wrapper.optimizer.type='Lion'", 'custom_imports'),
         input='a Lion config that forgets `custom_imports`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('decay-mult-without-wd', _decay_mult, ConfigError,
         ('paramwise_cfg.bias_decay_mult=0', 'weight_decay'),
         input='`paramwise_cfg` decay multipliers, no `weight_decay`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('custom-key-decay-mult-without-wd', _decay_mult_custom_key, ConfigError,
         ("custom_keys['backbone'].decay_mult=0.1", 'weight_decay'),
         input='`custom_keys` `decay_mult`, no `weight_decay`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('accumulative-counts', config_case(**{'optim_wrapper.accumulative_counts': 0}),
         ConfigError, ('optim_wrapper.accumulative_counts=0',),
         input='`accumulative_counts=0`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('auto-scale-lr-rule', config_case(**{'auto_scale_lr.rule': 'cubic'}), ConfigError,
         ('auto_scale_lr.rule', "'cubic'", "'linear', 'sqrt'", "dict(type='power'"),
         input="`auto_scale_lr=dict(rule='cubic')`",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('auto-scale-lr-exponent',
         config_case(**{'auto_scale_lr.rule': dict(type='power', exponent=-1)}), ConfigError,
         ('auto_scale_lr.rule.exponent', 'got -1'),
         input="`auto_scale_lr=dict(rule=dict(type='power', exponent=-1))`",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('auto-scale-lr-base', config_case(**{'auto_scale_lr.base_batch_size': 0}), ConfigError,
         ('auto_scale_lr.base_batch_size', 'got 0'),
         input='`auto_scale_lr=dict(base_batch_size=0)`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('auto-scale-lr-key', config_case(**{'auto_scale_lr.rules': 'sqrt'}), ConfigError,
         ('auto_scale_lr.rules', "did you mean 'rule'?"),
         input="`auto_scale_lr=dict(rules='sqrt')` (a typo)",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('paramwise-key-typo',
         config_case(**{'optim_wrapper.paramwise_cfg.norm_decay_multi': 0}), ConfigError,
         ('optim_wrapper.paramwise_cfg.norm_decay_multi', "did you mean 'norm_decay_mult'?"),
         input='`paramwise_cfg=dict(norm_decay_multi=0)` (norms would be decayed)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('paramwise-key-short', config_case(**{'optim_wrapper.paramwise_cfg.bias_decay': 0}),
         ConfigError, ('optim_wrapper.paramwise_cfg.bias_decay', "'bias_decay_mult'"),
         input='`paramwise_cfg=dict(bias_decay=0)` (biases would be decayed)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('custom-keys-rule-typo',
         config_case(**{'optim_wrapper.paramwise_cfg.custom_keys': {'backbone': dict(lr_multi=0)}}),
         ConfigError, ("custom_keys['backbone'].lr_multi", "did you mean 'lr_mult'?"),
         input="`custom_keys={'backbone': dict(lr_multi=0)}` (the freeze would do nothing)",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('custom-keys-rule-eps',
         config_case(**{'optim_wrapper.paramwise_cfg.custom_keys': {'backbone': dict(eps=1e-8)}}),
         ConfigError, ("custom_keys['backbone'].eps",),
         input="`custom_keys={'backbone': dict(eps=1e-8)}` (AdamW's key in a rule)",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('clip-grad-key-typo', config_case(**{'optim_wrapper.clip_grad': dict(max_nrom=1)}),
         ConfigError, ('optim_wrapper.clip_grad.max_nrom', "did you mean 'max_norm'?"),
         input='`clip_grad=dict(max_nrom=1)`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('wrapper-type-no-scope', config_case(**{'optim_wrapper.type': 'GuardedOptimWrapper'}),
         ConfigError, ("optim_wrapper.type='GuardedOptimWrapper'", "'mmlion.GuardedOptimWrapper'"),
         input="`optim_wrapper.type='GuardedOptimWrapper'` (no `mmlion.`)",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('checkpoint-hook-key-typo',
         config_case(**{'default_hooks.checkpoint.max_keep_ckpt': 1}),
         ConfigError, ('default_hooks.checkpoint.max_keep_ckpt', "did you mean 'max_keep_ckpts'?"),
         input='`default_hooks.checkpoint.max_keep_ckpt=1` (a TypeError an epoch in, before)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('hook-type-typo',
         config_case(**{'default_hooks.checkpoint.type': 'mmlion.ResumableCheckpoint'}),
         ConfigError, ("default_hooks.checkpoint.type='mmlion.ResumableCheckpoint'",
                       "'mmlion.ResumableCheckpointHook'"),
         input="`default_hooks.checkpoint.type='mmlion.ResumableCheckpoint'`",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('max-epochs-zero', config_case(**{'train_cfg.max_epochs': 0}), ConfigError,
         ('train_cfg.max_epochs=0', 'train nothing'),
         input='`train_cfg.max_epochs=0` (rc 0, nothing trained, before)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('val-interval-zero', config_case(**{'train_cfg.val_interval': 0}), ConfigError,
         ('train_cfg.val_interval=0', 'val_dataloader'),
         input='`train_cfg.val_interval=0` (`ZeroDivisionError` an epoch in, before)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('epoch-scheduler-iteration-loop', _epoch_scheduler_under_iterations, ConfigError,
         ("param_scheduler[0] (type='CosineAnnealingLR')", 'IterBasedTrainLoop', 'by_epoch=False'),
         input='a by-epoch `CosineAnnealingLR` under an `IterBasedTrainLoop` (the lr never moves)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('amp-without-gpu', _amp_without_gpu, ConfigError,
         ("optim_wrapper.type='mmlion.GuardedAmpOptimWrapper'", '--amp', 'none'),
         input='`--amp` (or an AMP wrapper) on a machine without a GPU',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('launcher-outside-torchrun', _launcher_outside_torchrun, ConfigError,
         ('--launcher pytorch', 'RANK, WORLD_SIZE', 'torchrun'),
         input='`--launcher pytorch` without torchrun',
         where='`setup_distributed` (tools/train.py), before the Runner'),
    Case('train-tool-launcher-pytorch', _train_tool_launcher, ConfigError,
         ('--launcher pytorch', 'RANK', 'tools/dist_train.sh'),
         input='`tools/train.py CONFIG --launcher pytorch` without torchrun',
         where='tools/train.py, before the Runner'),
    Case('train-tool-work-dir-in-use', _train_tool_work_dir_in_use, ConfigError,
         ('tool_work_dir', 'in use by another run', 'started', '--work-dir'),
         input='two `tools/train.py` runs on one work dir at once',
         where='tools/train.py, before the Runner'),
    Case('clip-grad', config_case(**{'optim_wrapper.clip_grad.max_norm': -1}), ConfigError,
         ('optim_wrapper.clip_grad.max_norm=-1',),
         input='`clip_grad=dict(max_norm=-1)`',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('clip-grad-not-dict', config_case(**{'optim_wrapper.clip_grad': 'max_norm=1'}),
         ConfigError, ("optim_wrapper.clip_grad='max_norm=1'",),
         input="`clip_grad='max_norm=1'` (a string)",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('clip-grad-norm-type',
         config_case(**{'optim_wrapper.clip_grad': dict(max_norm=1, norm_type='l2')}),
         ConfigError, ("optim_wrapper.clip_grad.norm_type='l2'",),
         input="`clip_grad=dict(max_norm=1, norm_type='l2')`",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('paramwise-negative-lr-mult',
         config_case(**{'optim_wrapper.paramwise_cfg.custom_keys':
                        {'backbone': dict(lr_mult=-0.1)}}),
         ConfigError, ("paramwise_cfg.custom_keys['backbone'].lr_mult=-0.1",),
         input="`paramwise_cfg.custom_keys={'backbone': dict(lr_mult=-0.1)}`",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('missing-ann-file',
         config_case(**{'train_dataloader.dataset.ann_file': 'annotations/nope.json'}),
         ConfigError, ("train_dataloader.dataset.ann_file='annotations/nope.json'",
                       'data/shapes/annotations/nope.json'),
         input='an annotation file that is not there',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('missing-image-folder',
         config_case(**{'val_dataloader.dataset.data_prefix.img': 'vall/'}), ConfigError,
         ("val_dataloader.dataset.data_prefix.img='vall/'",),
         input='an image folder that is not there',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('resume-missing-file', config_case(resume=True, load_from='work_dirs/none/epoch_9.pth'),
         ConfigError, ("'work_dirs/none/epoch_9.pth'", 'does not exist'),
         input='`--resume` a checkpoint that is not there',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('resume-truncated', _resume, ConfigError,
         ('epoch_2.pth', 'truncated or corrupt', 'epoch_1.pth'), setup=_truncated,
         input='`--resume` a truncated checkpoint',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('resume-corrupt', _resume, ConfigError,
         ('epoch_2.pth', '4096 bytes', 'truncated or corrupt'), setup=_corrupt,
         input='`--resume` a corrupt file',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('resume-auto-truncated', _resume_auto_truncated, ConfigError,
         ('last_checkpoint', 'epoch_2.pth', 'truncated or corrupt'),
         setup=_pointer_to_truncated,
         input='`--resume` (auto) when `last_checkpoint` names a truncated file',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('resume-other-optimizer', _resume, ConfigError,
         ('adamw_epoch_1.pth', 'exp_avg_sq', 'load_from='), setup=_other_optimizer_ckpt,
         input="`--resume` an AdamW run's checkpoint with Lion",
         where='`check_config` (tools/train.py), before the Runner'),
    Case('train-tool-truncated', _train_tool_truncated, ConfigError,
         ('epoch_2.pth', 'truncated or corrupt'), setup=_truncated,
         input='`tools/train.py CONFIG --resume TRUNCATED.pth`',
         where='tools/train.py, before the Runner'),
    Case('train-tool-resume-folder', _train_tool_resume_folder, ConfigError,
         ('is a folder', 'epoch_1.pth'), setup=_folder_of_checkpoints,
         input='`tools/train.py CONFIG --resume WORK_DIR` (a folder)',
         where='tools/train.py, before the Runner'),
    Case('load-from-missing', config_case(load_from='work_dirs/none/epoch_9.pth'), ConfigError,
         ('load_from', "'work_dirs/none/epoch_9.pth'", 'does not exist'),
         input='`load_from` a checkpoint that is not there (no resume)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('load-from-truncated', _load_from, ConfigError,
         ('load_from', 'epoch_2.pth', 'truncated or corrupt'), setup=_truncated,
         input='`load_from` a truncated checkpoint (no resume)',
         where='`check_config` (tools/train.py), before the Runner'),
    Case('dist-train-zero-processes', _dist_train_zero, SystemExit, ("GPUS='0'", 'integer >= 1'),
         input='`tools/dist_train.sh CONFIG 0`',
         where='tools/dist_train.sh, before torchrun'),
]


test_bad_input = bad_input_test(CASES, shapes_data=True)
