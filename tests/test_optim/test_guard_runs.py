"""The non-finite guard under a real Runner (tools/train.py), with accumulation:
Lion(skip_nonfinite) and GuardedOptimWrapper (guarding AdamW, with and without
clipping) skip the poisoned step, log it and count it in the checkpoint."""
import pytest
import torch

from helpers import LION, load, train, write_config

pytestmark = pytest.mark.slow


GUARDED_ADAMW = "dict(type='AdamW', lr=1e-3)"


@pytest.mark.parametrize('name, optimizer, wrapper, clip', [
    ('lion', LION, 'OptimWrapper', 'dict(max_norm=1.0)'),
    ('adamw_wrapper_clip', GUARDED_ADAMW, 'mmlion.GuardedOptimWrapper', 'dict(max_norm=1.0)'),
    ('adamw_wrapper', GUARDED_ADAMW, 'mmlion.GuardedOptimWrapper', 'None'),
])
def test_nan_gradient_is_skipped_and_logged_under_the_runner(tmp_path, name, optimizer,
                                                             wrapper, clip):
    """Lion(skip_nonfinite) and GuardedOptimWrapper (here guarding AdamW, with the
    clipping norm and without clipping) under the Runner, with accumulation."""
    config = write_config(tmp_path, name, optimizer=optimizer, wrapper=wrapper,
                          custom_hooks="[dict(type='PoisonGradHook', poison_iter=6)]")
    with open(config) as f:
        text = f.read()
    with open(config, 'w') as f:
        f.write(text.replace('clip_grad=dict(max_norm=1.0)', f'clip_grad={clip}'))
    # Iteration 6 ends an accumulation window of 3, so it is a step of its own.
    out = train(config, tmp_path / name)
    before = load(tmp_path / name / 'before_poison.pth')
    after = load(tmp_path / name / 'after_poison.pth')
    for key, value in before['params'].items():
        assert torch.equal(value, after['params'][key]), (name, key)
    state_before = before['optimizer']['state']
    for index, entry in after['optimizer']['state'].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, state_before[index][key]), (name, index, key)
    assert 'non-finite gradient (NaN or Inf)' in out and '1 in a row, 1 in total' in out
    final = load(tmp_path / name / 'epoch_3.pth')
    assert all(v.isfinite().all() for v in final['state_dict'].values())
    assert final['optimizer']['nonfinite'] == dict(skipped=1, consecutive=0)
    if wrapper != 'OptimWrapper':
        assert 'first in fc1.weight' in out  # the wrapper names the parameter
        assert 'nonfinite_skips' in out
