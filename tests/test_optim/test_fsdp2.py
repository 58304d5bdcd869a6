"""Lion under torch FSDP2 (``fully_shard``): two real processes (torchrun, gloo),
every setting equal to one process, a NaN in one rank's shard skipped by every rank,
cautious refused, and round trips through the full state dict and a sharded
distributed checkpoint (tests/_fsdp2_worker.py)."""
import json
import sys

import pytest
import torch

from helpers import FSDP2_UNSUPPORTED, free_port, run_tool
from mmlion.optim import Lion

if FSDP2_UNSUPPORTED:
    pytest.skip(FSDP2_UNSUPPORTED, allow_module_level=True)
import _fsdp2_worker as worker  # noqa: E402  (FSDP2's modules: torch >= 2.6)

pytestmark = pytest.mark.slow

OPTION_SETS = [dict(), dict(fused=True), dict(foreach=True), dict(fused=False),
               dict(state_dtype='bfloat16'), dict(skip_nonfinite=True, nan_rank=1),
               dict(cautious=True)]
FP32 = dict(rtol=1e-6, atol=1e-7)


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp('fsdp2')
    run_tool([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
              '--master_port', str(free_port()), 'tests/_fsdp2_worker.py', str(out),
              json.dumps(OPTION_SETS)], timeout=600)
    return [torch.load(out / f'result_{i}.pt', weights_only=False)
            for i in range(len(OPTION_SETS))]


def single_process(options: dict):
    """The same training in one process; the NaN step is one every rank skips."""
    options = dict(options)
    nan_rank = options.pop('nan_rank', None)
    model = worker.make_model()
    optimizer = Lion(model.parameters(), lr=1e-2, weight_decay=0.1, **options)
    for step in range(worker.STEPS):
        if nan_rank is not None and step == worker.NAN_STEP:
            continue
        optimizer.zero_grad()
        model(worker.batch(step)).square().mean().backward()
        optimizer.step()
    return model, optimizer


@pytest.mark.parametrize('index', range(len(OPTION_SETS) - 1),
                         ids=[str(o) for o in OPTION_SETS[:-1]])
def test_sharded_lion_equals_one_process(results, index):
    result = results[index]
    model, optimizer = single_process(OPTION_SETS[index])
    names = dict(model.named_parameters())
    assert result['model'].keys() == names.keys()
    for name, param in names.items():
        torch.testing.assert_close(result['model'][name], param.detach(), **FP32)
        exp_avg = result['optimizer']['state'][name]['exp_avg']
        assert exp_avg.dtype == optimizer.state[param]['exp_avg'].dtype
        torch.testing.assert_close(exp_avg, optimizer.state[param]['exp_avg'], **FP32)
    expected_skips = 1 if 'nan_rank' in OPTION_SETS[index] else 0
    assert result['skipped'] == expected_skips
    # Fresh sharded models and optimizers, loaded from the full state dict and from a
    # sharded distributed checkpoint, take the next step exactly as the original did.
    for name, value in result['after'].items():
        assert torch.equal(value, result['twin_after'][name]), name
        assert torch.equal(value, result['restored_after'][name]), name


def test_cautious_on_shards_is_refused_with_a_reason(results):
    assert 'cautious=True with a sharded DTensor parameter' in results[-1]['error']
