"""mmlion.ZeroRedundancyOptimizer on a real one-process gloo group, in-process: it
steps like Lion, is guarded by the wrapper every optimizer is guarded by, and refuses
stale state."""
import pytest
import torch

from mmlion.optim import GuardedOptimWrapper, Lion, ZeroRedundancyOptimizer


def _params():
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(4))]


def _step(optimizer, params, bad=False):
    for p in params:
        p.grad = torch.full_like(p, 0.3)
    if bad:
        params[1].grad[0] = float('inf')
    optimizer.step()


def test_zero_steps_like_lion_and_the_guarded_wrapper_skips_nonfinite_steps(
        single_process_group):
    zero_params, lion_params = _params(), _params()
    zero = ZeroRedundancyOptimizer(zero_params, optimizer_type='Lion', lr=1e-2,
                                   weight_decay=0.1)
    wrapper = GuardedOptimWrapper(zero, max_consecutive_skips=3)
    lion = Lion(lion_params, lr=1e-2, weight_decay=0.1)
    for bad in (False, True, False):
        before = [p.detach().clone() for p in zero_params]
        _step(wrapper, zero_params, bad)
        if bad:
            assert all(torch.equal(b, p) for b, p in zip(before, zero_params))
        else:
            _step(lion, lion_params)
    for z, p in zip(zero_params, lion_params):
        assert torch.equal(z.detach(), p.detach())
    with pytest.raises(RuntimeError, match='consolidate_state_dict'):
        zero.state_dict()
    zero.consolidate_state_dict(to=0)
    state = wrapper.state_dict()
    assert state['nonfinite'] == dict(skipped=1, consecutive=0)
    assert all(set(s) == {'exp_avg'} for s in state['state'].values())


def test_deprecated_skip_nonfinite_is_handed_to_lion_and_its_counts_kept(
        single_process_group):
    """Old configs and checkpoints: ``skip_nonfinite=True`` warns, Lion guards its shard,
    the counts travel in ZeRO's state dict and come back, and ``type(opt)(params,
    **opt.defaults)`` rebuilds the same."""
    params = _params()
    with pytest.warns(FutureWarning, match='GuardedOptimWrapper'):
        zero = ZeroRedundancyOptimizer(params, optimizer_type='Lion', lr=1e-2,
                                       skip_nonfinite=True, max_consecutive_skips=4)
    assert zero.optim.defaults['skip_nonfinite'] and zero.optim.defaults[
        'max_consecutive_skips'] == 4
    before = [p.detach().clone() for p in params]
    _step(zero, params, bad=True)
    assert all(torch.equal(b, p) for b, p in zip(before, params))
    zero.consolidate_state_dict(to=0)
    state = zero.state_dict()
    assert state['nonfinite'] == dict(skipped=1, consecutive=1)
    with pytest.warns(FutureWarning):
        rebuilt = type(zero)(_params(), **zero.defaults)
    assert rebuilt.defaults['optimizer_type'] == 'Lion' and rebuilt.defaults['lr'] == 1e-2
    rebuilt.load_state_dict(state)
    assert rebuilt.optim.nonfinite_guard.consecutive == 1
    assert rebuilt.optim.defaults['max_consecutive_skips'] == 4


def test_deprecated_skip_nonfinite_needs_an_inner_optimizer_with_a_guard(
        single_process_group):
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match='GuardedOptimWrapper'):
        ZeroRedundancyOptimizer(_params(), optimizer_type='AdamW', skip_nonfinite=True)
