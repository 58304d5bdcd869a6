"""Bad input to mmlion.engine: a file mmlion did not write where a checkpoint goes, and
what ConfigCheckHook finds once the model, a loaded checkpoint or the metrics are there
(see tests/bad_input.py)."""
import logging

import torch

from bad_input import Case, bad_input_test
from helpers import toy_checkpoint, toy_runner
from mmlion.engine import AtomicLocalBackend
from mmlion.utils.config_error import ConfigError

CHECKED = dict(custom_hooks=[dict(type='mmlion.ConfigCheckHook')])


class LoggedWarning(Exception):
    """A WARNING mmlion logged (training goes on): raised here so the table shows it."""


def _unmatched_custom_key(ctx, _):
    runner = toy_runner(ctx.tmp / 'work_dir', **CHECKED, **{
        'optim_wrapper.paramwise_cfg': dict(custom_keys={r'fc.*\.weight': dict(lr_mult=0)})})
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    runner.logger.addHandler(handler)
    try:
        runner.call_hook('before_run')
    finally:
        runner.logger.removeHandler(handler)
    raise LoggedWarning(' | '.join(r.getMessage() for r in records if 'custom_keys' in
                                   r.getMessage()))


def _nan_weights(ctx):
    nan = torch.full((32, 16), float('nan'))
    return ctx.watch(toy_checkpoint(ctx.tmp, **{'fc1.weight': nan}))


def _load_from_nan(ctx, path):
    runner = toy_runner(ctx.tmp / 'work_dir', load_from=path, **CHECKED)
    runner.load_checkpoint(path)


def _resume_into_deeper_model(ctx, path):
    runner = toy_runner(ctx.tmp / 'work_dir', resume=True, load_from=path,
                        **{'model.extra_layer': True}, **CHECKED)
    runner.resume(path)


def _save_best_typo(ctx, _):
    runner = toy_runner(ctx.tmp / 'work_dir', **CHECKED, **{
        'train_cfg.max_epochs': 1, 'default_hooks.checkpoint.save_best': 'acuracy',
        'default_hooks.checkpoint.rule': 'greater'})
    runner.train()

def _foreign_checkpoint(ctx):
    work_dir = ctx.tmp / 'work_dir'
    work_dir.mkdir()
    (work_dir / 'epoch_1.pth').write_bytes(b'a checkpoint of another run')
    return ctx.watch(work_dir / 'epoch_1.pth')


def _save_over(ctx, path):
    AtomicLocalBackend().put(b'mmlion checkpoint', path)


CASES = [
    Case('foreign-checkpoint-in-work-dir', _save_over, FileExistsError,
         ('epoch_1.pth', 'did not write it'), setup=_foreign_checkpoint,
         input='a checkpoint mmlion did not write, where it saves one',
         where="`AtomicCheckpointHook`'s writer, before any write"),
    Case('custom-keys-match-nothing', _unmatched_custom_key, LoggedWarning,
         (r"custom_keys['fc.*\\.weight'] matches no parameter", 'substring',
          'fc1.weight'),
         input=r"`custom_keys={'fc.*\.weight': dict(lr_mult=0)}` (a regex; MMEngine matches "
               "substrings)",
         where='`ConfigCheckHook` before the run: a WARNING, training goes on'),
    Case('load-from-nonfinite-weights', _load_from_nan, ConfigError,
         ('load_from', 'epoch_1.pth', "'fc1.weight'", '512 NaN/Inf'), setup=_nan_weights,
         input='`load_from` a checkpoint whose weights hold NaN',
         where='`ConfigCheckHook` as the checkpoint loads, before the first step'),
    Case('resume-other-model', _resume_into_deeper_model, ConfigError,
         ('epoch_1.pth', '2 parameters of this model are not in it', 'fc0.weight',
          'load_from='), setup=lambda ctx: ctx.watch(toy_checkpoint(ctx.tmp)),
         input='`--resume` into a model with one more layer',
         where='`ConfigCheckHook` as the checkpoint loads, before the optimizer state'),
    Case('save-best-not-a-metric', _save_best_typo, ConfigError,
         ("save_best='acuracy'", "did you mean 'accuracy'?", "['accuracy']"),
         input="`default_hooks.checkpoint.save_best='acuracy'` (rule='greater')",
         where='`ConfigCheckHook` at the first validation (a `KeyError` there, before)'),
]


test_bad_input = bad_input_test(CASES)
