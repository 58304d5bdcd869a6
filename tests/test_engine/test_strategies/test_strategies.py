"""mmlion's FSDP and DeepSpeed strategies, in-process: what each workaround of
mmlion.engine.mmengine_fixes changes where its bug is present, and nothing where it is
not (the end-to-end runs are in test_fsdp_strategy.py and test_deepspeed_strategy.py)."""
import importlib.util

import pytest
import torch
from mmengine.logging import MMLogger

from mmlion.engine import mmengine_fixes
from mmlion.engine.strategies import DeepSpeedStrategy, FSDPStrategy


@pytest.fixture
def fresh_verdicts():
    mmengine_fixes.needed.cache_clear()
    yield
    mmengine_fixes.needed.cache_clear()


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU-only workaround')
def test_fsdp_on_a_cpu_machine_wraps_on_the_cpu_and_never_offloads():
    strategy = FSDPStrategy(state_dict_cfg='full')
    assert strategy.model_wrapper['device_id'] == torch.device('cpu')
    assert strategy.state_dict_config.offload_to_cpu is False
    assert strategy.optim_state_dict_config.offload_to_cpu is False


def test_fsdp_stands_aside_where_there_is_a_gpu(monkeypatch, fresh_verdicts):
    monkeypatch.setattr(mmengine_fixes, 'without_gpu', lambda: False)
    strategy = FSDPStrategy(state_dict_cfg='full')
    assert 'device_id' not in (strategy.model_wrapper or {})
    assert strategy.state_dict_config.offload_to_cpu is True  # MMEngine's own setting


@pytest.mark.skipif(importlib.util.find_spec('deepspeed') is None, reason='needs deepspeed')
def test_deepspeed_allows_lion_as_a_client_optimizer():
    MMLogger.get_instance('mmlion-test-strategies')
    strategy = DeepSpeedStrategy(zero_optimization=dict(stage=2), gradient_clipping=0.0)
    assert strategy.config['zero_allow_untested_optimizer'] is True
    assert strategy.config['gradient_clipping'] == 0.0


@pytest.mark.skipif(importlib.util.find_spec('deepspeed') is None, reason='needs deepspeed')
def test_deepspeed_optimizers_register_without_the_removed_ones():
    from mmengine.registry import OPTIMIZERS
    registered = mmengine_fixes.register_deepspeed_optimizers()
    for name in registered:
        assert name in OPTIMIZERS.module_dict
    assert 'FusedAdam' in OPTIMIZERS.module_dict
