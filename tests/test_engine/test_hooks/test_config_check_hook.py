"""ConfigCheckHook on a real Runner: loaded weights are checked by the model's
parameter names (a buffer may hold -inf on purpose), a resume into the same model
passes, and tools/train.py's helper adds the hook once."""
import pytest
import torch
from mmengine.config import Config

from helpers import toy_checkpoint, toy_runner
from mmlion.cli import add_config_check_hook
from mmlion.utils.config_error import ConfigError

CHECKED = dict(custom_hooks=[dict(type='mmlion.ConfigCheckHook')])


def test_only_parameters_are_checked_for_nan_and_inf(tmp_path):
    path = toy_checkpoint(tmp_path, **{'bn.running_mean': torch.full((32,), -float('inf'))})
    runner = toy_runner(tmp_path / 'run', load_from=path, **CHECKED)
    runner.load_checkpoint(path)  # a buffer: not checked
    assert torch.isinf(runner.model.bn.running_mean).all()
    path = toy_checkpoint(tmp_path / 'inf',
                          **{'fc2.bias': torch.tensor([0.0, float('inf'), 0.0, 0.0])})
    with pytest.raises(ConfigError, match=r"'fc2.bias' has 1 NaN/Inf values of 4"):
        toy_runner(tmp_path / 'run2', load_from=path, **CHECKED).load_checkpoint(path)


def test_a_resume_into_the_same_model_passes(tmp_path):
    path = toy_checkpoint(tmp_path)
    runner = toy_runner(tmp_path / 'run', resume=True, load_from=path, **CHECKED)
    runner.resume(path)
    assert runner.iter == 0  # the checkpoint was saved before any step


def test_the_hook_is_added_once():
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    add_config_check_hook(cfg)
    add_config_check_hook(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['EMAHook', 'mmlion.ConfigCheckHook']


@pytest.mark.slow  # three real trainings
@pytest.mark.parametrize('checkpoint_hook, companions, refused', [
    ('CheckpointHook', [], True),
    ('CheckpointHook', [dict(type='mmlion.ShardedOptimizerHook')], False),
    ('mmlion.ResumableCheckpointHook', [], False)])
def test_zero_without_its_gathering_hook_is_refused_before_training(
        tmp_path, single_process_group, checkpoint_hook, companions, refused):
    from helpers import ZERO
    runner = toy_runner(tmp_path / 'run', **{
        'optim_wrapper.optimizer': dict(eval(ZERO), _delete_=True),
        'default_hooks.checkpoint.type': checkpoint_hook,
        'custom_hooks': [*CHECKED['custom_hooks'], *companions], 'train_cfg.max_epochs': 1})
    if refused:
        with pytest.raises(ConfigError, match="'mmlion.ShardedOptimizerHook'"):
            runner.train()
        assert not list((tmp_path / 'run').glob('epoch_*.pth'))
    else:
        runner.train()
        assert (tmp_path / 'run' / 'epoch_1.pth').exists()
