"""The paramwise table says what the optimizer got: for every parameter of a real
OpenMMLab model (the demo's RTMDet) and of the toy model, the row it is in carries the
lr and weight decay of its group in the optimizer MMEngine builds from the config."""
import logging

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

from helpers import DEMO, toy_runner
from mmlion.engine.paramwise_report import paramwise_rows, report_paramwise, unmatched_rules


def _demo_model_and_cfg(**paramwise):
    pytest.importorskip('mmdet', reason='the demo is an MMDetection model')
    cfg = Config.fromfile(DEMO)
    init_default_scope(cfg.default_scope)
    cfg.optim_wrapper.paramwise_cfg.update(paramwise)
    return MODELS.build(cfg.model), cfg.optim_wrapper


def _assert_rows_match_optimizer(model, optim_wrapper_cfg):
    rows = paramwise_rows(model, optim_wrapper_cfg)
    optimizer = build_optim_wrapper(model, optim_wrapper_cfg).optimizer
    group_of = {id(g['params'][0]): g for g in optimizer.param_groups}
    params = dict(model.named_parameters())
    base_lr, base_wd = optimizer.defaults['lr'], optimizer.defaults['weight_decay']
    seen = []
    for row in rows:
        for name in row.names:
            group = group_of[id(params[name])]
            assert group['lr'] == pytest.approx(row.lr_mult * base_lr), (row.rule, name)
            assert group['weight_decay'] == pytest.approx(row.decay_mult * base_wd), \
                (row.rule, name)
            seen.append(name)
    assert sorted(seen) == sorted(params)  # every parameter, once
    return rows


def test_the_demo_recipe_shows_norms_and_biases_undecayed():
    model, cfg = _demo_model_and_cfg(custom_keys={'backbone.stem': dict(lr_mult=0.1)})
    rows = {row.rule: row for row in _assert_rows_match_optimizer(model, cfg)}
    assert rows['norm'].decay_mult == 0 and rows['bias'].decay_mult == 0
    assert rows['other'].decay_mult == 1 and rows['other'].lr_mult == 1
    stem = rows["custom_keys['backbone.stem']"]
    assert stem.lr_mult == pytest.approx(0.1)
    assert all(name.startswith('backbone.stem.') for name in stem.names)
    assert unmatched_rules(model, cfg.paramwise_cfg) == []


def test_without_paramwise_cfg_the_log_says_everything_is_decayed(tmp_path):
    runner = toy_runner(tmp_path / 'run')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    try:
        rows = report_paramwise(runner.model, runner.cfg.optim_wrapper, runner.logger)
    finally:
        runner.logger.removeHandler(handler)
    assert rows == []
    count = sum(1 for _ in runner.model.parameters())
    assert any(f'all {count} parameters, norms and biases included' in r.getMessage()
               for r in records)


def test_a_rule_that_matches_nothing_is_named_with_the_nearest_parameters():
    model, cfg = _demo_model_and_cfg(custom_keys={'bbox_head.cls.*': dict(lr_mult=0),
                                                 'bbox_head.rtm_cls': dict(lr_mult=2)})
    messages = unmatched_rules(model, cfg.paramwise_cfg)
    assert len(messages) == 1 and "custom_keys['bbox_head.cls.*']" in messages[0]
    assert 'bbox_head.rtm_cls' in messages[0]  # among the nearest names
    _assert_rows_match_optimizer(model, cfg)
