"""auto_scale_lr's rule (mmlion.engine.lr_scaling) through real Runners built from a
config with tools/train.py's --auto-scale-lr: per-process batch, accumulation and both
rules, Lion's default, and MMEngine's own rule left to other optimizers. The world size
is counted in tests/test_cli/test_dist_runs.py (two real processes)."""
import copy
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import load_tool, toy_runner, write_config
from mmlion.engine import lr_scaling

train_tool = load_tool('tools/train.py')
LR = 1e-3
ADAMW = dict(_delete_=True, type='AdamW', lr=LR, weight_decay=0.01)


def run_with_auto_scale_lr(tmp_path, monkeypatch, options, adamw=False):
    """tools/train.py's command line with --auto-scale-lr and ``options`` (its
    --cfg-options), then a real Runner trains one epoch; returns (its optimizer's param
    groups, the log)."""
    config = write_config(tmp_path, 'toy')
    monkeypatch.setattr(sys, 'argv', [
        'train.py', config, '--auto-scale-lr', '--work-dir', str(tmp_path / 'work'),
        '--cfg-options', 'train_cfg.max_epochs=1', *(f'{k}={v}' for k, v in options.items())])
    cfg = train_tool.merge_args(Config.fromfile(config), train_tool.parse_args())
    cfg.merge_from_dict(dict(val_cfg=None, val_dataloader=None, val_evaluator=None))
    cfg.experiment_name = f'lr_scaling_{tmp_path.name}'  # its own logger and log file
    if adamw:
        cfg.merge_from_dict({'optim_wrapper.optimizer': ADAMW})
    runner = Runner.from_cfg(cfg)
    runner.train()
    with open(runner.logger.log_file) as f:
        log = f.read()
    return runner.optim_wrapper.optimizer.param_groups, log


# (optimizer, rule, per-process batch, accumulation, base batch, lr factor)
CASES = [
    # Lion's default rule; accumulation counted
    ('Lion', None, 4, 3, 3, (4 * 3 / 3) ** lr_scaling.rule_exponent(lr_scaling.LION_DEFAULT_RULE)),
    ('Lion', 'sqrt', 8, 1, 2, 2.0),
    ('Lion', 'linear', 4, 3, 6, 2.0),
    ('Lion', 'linear', 2, 1, 8, 0.25),                # a smaller batch lowers the lr
    ('AdamW', 'sqrt', 4, 1, 1, 2.0),                  # any optimizer may name a rule
    ('Lion', dict(type='power', exponent=0.75), 4, 4, 1, 8.0),   # (4 x 4) ** 0.75
    ('AdamW', dict(type='power', exponent=0), 4, 1, 1, 1.0),     # no scaling at all
    ('AdamW', None, 4, 3, 2, 2.0),                    # MMEngine's rule, as MMEngine has it
]


@pytest.mark.parametrize('optimizer,rule,batch,accumulation,base,factor', CASES)
def test_runner_scales_by_the_rule(optimizer, rule, batch, accumulation, base, factor,
                                   tmp_path, monkeypatch):
    options = {'auto_scale_lr.base_batch_size': base, 'train_dataloader.batch_size': batch,
               'optim_wrapper.accumulative_counts': accumulation}
    if isinstance(rule, dict):  # as --cfg-options writes a nested key
        options.update({f'auto_scale_lr.rule.{k}': v for k, v in rule.items()})
    elif rule is not None:
        options['auto_scale_lr.rule'] = rule
    groups, log = run_with_auto_scale_lr(tmp_path, monkeypatch, options,
                                         adamw=optimizer == 'AdamW')
    lrs = [g['initial_lr'] for g in groups]  # what the schedulers start from
    assert lrs and all(lr == pytest.approx(LR * factor, rel=1e-12) for lr in lrs), lrs
    if optimizer == 'AdamW' and rule is None:  # MMEngine's own code, its own log line
        assert f'Scaling the original LR by {factor}' in log
        assert 'accumulated step' not in log
    else:
        expected_rule = lr_scaling.rule_label(rule or lr_scaling.LION_DEFAULT_RULE)
        assert (f'effective batch {batch * accumulation} = 1 process(es) x {batch} per '
                f'process x {accumulation} accumulated step(s), tuned for {base}; rule '
                f'{expected_rule}') in log
        assert f'lr x {factor:.6g}' in log


def test_weight_decay_is_held(tmp_path, monkeypatch):
    """The lr scales, the weight decay stays: lr * weight_decay scales with the lr."""
    groups, log = run_with_auto_scale_lr(tmp_path, monkeypatch, {
        'auto_scale_lr.base_batch_size': 1, 'train_dataloader.batch_size': 4,
        'optim_wrapper.accumulative_counts': 1})
    factor = 4 ** lr_scaling.rule_exponent(lr_scaling.LION_DEFAULT_RULE)
    decay = Config.fromfile(write_config(tmp_path, 'again')).optim_wrapper.optimizer
    assert [(g['initial_lr'], g['weight_decay']) for g in groups] == \
        [(pytest.approx(LR * factor), decay.weight_decay)] * len(groups)
    assert f'weight decay unchanged, so lr * weight_decay also x {factor:.6g}' in log


def test_plan_and_check_without_a_runner():
    plan = lr_scaling.plan_scaling(dict(base_batch_size=256), None, world_size=8,
                                   batch_size=64, accumulation=2)
    assert (plan.rule, plan.effective_batch, plan.factor) == ('linear', 1024, 4.0)
    assert plan.why == lr_scaling.MMENGINE_RULE
    for bad, says in [(dict(base_batch_size=-1), 'base_batch_size'),
                      (dict(base_batch_size=True), 'base_batch_size'),
                      (dict(base_batch_size=float('nan')), 'base_batch_size'),
                      (dict(enable=True), 'base_batch_size is missing'),
                      (dict(enable='yes', base_batch_size=8), 'enable'),
                      (dict(base_batch_size=8, rule='Sqrt'), "'Sqrt'"),
                      (dict(rule=dict(type='power')), 'rule.exponent .* got None'),
                      (dict(rule=dict(type='power', exponent=-0.5)), 'got -0.5'),
                      (dict(rule=dict(type='power', exponent=float('inf'))), 'got inf'),
                      (dict(rule=dict(type='power', exponent=True)), 'got True'),
                      (dict(rule=dict(type='pow', exponent=0.5)), "rule.type .* got 'pow'"),
                      (dict(rule=dict(type='power', exponant=0.5)),
                       "rule.exponant .* did you mean 'exponent'"),
                      (dict(rule=0.75), 'rule must be one of .* got 0.75'),
                      ([16], 'must be a dict')]:
        with pytest.raises(ValueError, match=says):
            lr_scaling.check_auto_scale_lr(bad)
    plan = lr_scaling.plan_scaling(dict(base_batch_size=32, rule=dict(type='power',
                                                                    exponent=0.75)),
                                   None, world_size=1, batch_size=512)
    assert (plan.rule, plan.factor) == (dict(type='power', exponent=0.75), 8.0)
    assert "rule dict(type='power', exponent=0.75)" in plan.describe()
    lr_scaling.check_auto_scale_lr(None)
    lr_scaling.check_auto_scale_lr(dict(enable=False))  # nothing to scale, nothing needed


def test_flexible_runner_strategies_scale_by_the_rule(tmp_path):
    """The FlexibleRunner's strategies (MMEngine's SingleDeviceStrategy here; mmlion's
    FSDP strategy inherits the same method) scale Lion's lr by the rule, counting
    accumulation."""
    import torch
    from mmengine._strategy import SingleDeviceStrategy
    strategy = SingleDeviceStrategy(
        work_dir=str(tmp_path), experiment_name=f'lr_scaling_{tmp_path.name}',
        auto_scale_lr=dict(enable=True, base_batch_size=4, rule='sqrt'))
    model, _ = strategy.prepare(
        torch.nn.Linear(3, 2),
        optim_wrapper=dict(optimizer=dict(type='Lion', lr=LR), accumulative_counts=4),
        dispatch_kwargs=dict(train_micro_batch_size_per_gpu=4, max_iters=8))
    lrs = [g['lr'] for g in strategy.optim_wrapper.optimizer.param_groups]
    assert lrs == [pytest.approx(LR * 2)] * len(lrs)  # sqrt(1 x 4 x 4 / 4)


def _outcome(scale_lr, runner, auto_scale_lr):
    """(the error it raised, or None; the lrs it left) for a fresh wrapper."""
    wrapper = runner.build_optim_wrapper(copy.deepcopy(runner.cfg.optim_wrapper))
    try:
        scale_lr(runner, wrapper, auto_scale_lr)
        error = None
    except Exception as e:  # noqa: BLE001  compared below, type and message
        error = (type(e), str(e))
    return error, [g['lr'] for g in wrapper.optimizer.param_groups]


@pytest.mark.parametrize('auto_scale_lr', [
    dict(enable=True),                              # MMEngine asserts base_batch_size
    dict(enable=True, base_batch_size='16'),        # MMEngine reads it with float()
    dict(enable=True, base_batch_size=2),
], ids=['no-base', 'base-as-string', 'base'])
def test_other_optimizers_keep_mmengines_code_errors_included(tmp_path, auto_scale_lr):
    """SGD, no rule named: the Runner's scale_lr is MMEngine's, exactly: what MMEngine
    refuses fails as MMEngine fails, what it accepts scales as MMEngine scales."""
    runner = toy_runner(tmp_path / 'run', **{'optim_wrapper.optimizer': dict(
        _delete_=True, type='SGD', lr=LR)})
    assert Runner.scale_lr is lr_scaling.runner_scale_lr  # mmlion's is installed
    theirs = _outcome(lr_scaling.MMENGINE_METHODS['Runner.scale_lr'], runner,
                      auto_scale_lr)
    ours = _outcome(Runner.scale_lr, runner, auto_scale_lr)
    assert ours == theirs
    assert (theirs[0] is not None) == ('base_batch_size' not in auto_scale_lr)
