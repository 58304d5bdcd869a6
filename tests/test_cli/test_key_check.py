"""The unknown-key and loop checks, read from what consumes each key; and against
configs written by others: a spread of the mmdet, mmpretrain and mmseg configs
installed with those packages passes, except the upstream mistakes the checks find
(each named below with what it does)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.optim import DefaultOptimWrapperConstructor

from helpers import torchvision_or_skip
from mmlion.cli.key_check import check_config_keys
from mmlion.cli.loop_check import check_loops
from mmlion.engine.known_keys import accepted_keywords, keys_read
from mmlion.utils.config_error import ConfigError


class _Base:
    def __init__(self, alpha, beta=1):
        pass


class _Forwards(_Base):
    def __init__(self, gamma=0, **kwargs):
        super().__init__(**kwargs)


class _Swallows:
    def __init__(self, delta=0, **kwargs):
        self.kwargs = kwargs  # goes nowhere a signature says


def test_keywords_follow_kwargs_up_the_bases_or_stand_aside():
    assert accepted_keywords(_Forwards) == {'alpha', 'beta', 'gamma'}
    assert accepted_keywords(_Swallows) is None
    # CheckpointHook's **kwargs reach runner.save_checkpoint beside all its arguments.
    assert {'max_keep_ckpts', 'save_best', 'interval'} <= accepted_keywords(CheckpointHook)


def test_paramwise_keys_are_read_from_the_constructors_source():
    read = keys_read(DefaultOptimWrapperConstructor, 'paramwise_cfg')
    assert {'norm_decay_mult', 'bias_decay_mult', 'custom_keys', 'bypass_duplicate'} <= read
    assert 'decay_mult' not in read  # a custom_keys rule's key, not paramwise_cfg's
    assert keys_read(DefaultOptimWrapperConstructor, r'custom_keys\[\s*\w+\s*\]') == {
        'lr_mult', 'decay_mult'}
    assert keys_read(_Swallows, 'paramwise_cfg') is None  # nothing to read: stand aside


def _upstream(package):
    root = osp.join(osp.dirname(__import__(package).__file__), '.mim', 'configs')
    return sorted(p for p in glob.glob(osp.join(root, '**', '*.py'), recursive=True)
                  if '_base_' not in p)


# Upstream configs the checks find a real mistake in: (path part, key named, what it does).
UPSTREAM_MISTAKES = [
    ('/twins/twins-', 'paramwise_cfg._delete',
     "a typo for _delete_: the base's paramwise_cfg is merged in, not replaced"),
    *[(f'/dnlnet/dnl_r{depth}-d8_4xb2-80k_cityscapes-769x769', "custom_keys['theta'].wd_mult",
       "not MMEngine's decay_mult: the theta weights are decayed") for depth in (50, 101)],
]
STRIDE = 4  # one config in 4 of each package: about 500 in all


@pytest.mark.slow
@pytest.mark.parametrize('package', ['mmdet', 'mmpretrain', 'mmseg'])
def test_upstream_configs_pass_or_name_a_real_mistake(package):
    torchvision_or_skip()  # mmpretrain's registry imports it (mmdet configs use it too)
    paths = _upstream(package)
    assert len(paths) > 100, package
    mistakes = [(p, key) for part, key, _ in UPSTREAM_MISTAKES for p in paths if part in p]
    checked = 0
    for path in paths[::STRIDE] + [p for p, _ in mistakes]:
        try:
            cfg = Config.fromfile(path)
        except Exception:  # noqa: BLE001  a base that is not shipped, a lazy-import config
            continue
        checked += 1
        expected = next((key for p, key in mistakes if p == path), None)
        if expected is None:
            check_config_keys(cfg)
            check_loops(cfg)
            continue
        with pytest.raises(ConfigError) as info:
            check_config_keys(cfg)
        assert expected in str(info.value)
    assert checked > len(paths) // STRIDE // 2, (checked, len(paths))


def test_rules_are_not_checked_where_the_optimizer_declares_nothing(tmp_path):
    """An optimizer whose settings go through **kwargs: a rule's keys cannot be known,
    so none is refused (a typo in paramwise_cfg itself still is)."""
    import torch
    from mmengine.registry import OPTIMIZERS

    class OpenOptimizer(torch.optim.SGD):
        def __init__(self, params, **settings):
            super().__init__(params, lr=settings.pop('lr', 0.1))

    OPTIMIZERS.register_module(name='MmlionTestOpenOptimizer', module=OpenOptimizer)
    try:
        cfg = Config(dict(optim_wrapper=dict(
            optimizer=dict(type='MmlionTestOpenOptimizer', lr=0.1),
            paramwise_cfg=dict(custom_keys={'head': dict(own_setting=1)}))))
        check_config_keys(cfg)
        cfg.optim_wrapper.paramwise_cfg.bias_decay = 0
        with pytest.raises(ConfigError, match="did you mean 'bias_decay_mult'"):
            check_config_keys(cfg)
    finally:
        OPTIMIZERS.module_dict.pop('MmlionTestOpenOptimizer')


def test_the_cached_reads_equal_reads_afresh():
    """keys_read and accepted_keywords are cached per class (a source parse each): the
    cached answers equal the same reads done afresh, for every class a shipped config
    reaches and a class the cache has not seen."""
    from mmengine.hooks import LoggerHook
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from mmlion.optim import GuardedOptimWrapper
    classes = [OptimWrapper, AmpOptimWrapper, GuardedOptimWrapper, CheckpointHook, LoggerHook,
               _Forwards, _Swallows]
    for _ in range(2):  # the first round fills the caches, the second reads them
        for cls in classes:
            assert accepted_keywords(cls) == accepted_keywords.__wrapped__(cls)
        for consumer, name in [(DefaultOptimWrapperConstructor, 'paramwise_cfg'),
                               (DefaultOptimWrapperConstructor, r'custom_keys\[\s*\w+\s*\]'),
                               (_Swallows, 'paramwise_cfg')]:
            assert keys_read(consumer, name) == keys_read.__wrapped__(consumer, name)
