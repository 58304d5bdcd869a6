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
    with pytest.raises(RuntimeError, match='mmlion.ShardedOptimizerHook'):
        zero.state_dict()
    zero.consolidate_state_dict(to=0)
    state = wrapper.state_dict()
    assert state['nonfinite'] == dict(skipped=1, consecutive=0)
    assert all(set(s) == {'exp_avg'} for s in state['state'].values())


@pytest.mark.parametrize('kwargs', [dict(skip_nonfinite=True),
                                    dict(max_consecutive_skips=4)])
def test_the_removed_skip_nonfinite_is_refused_naming_the_wrapper(single_process_group, kwargs):
    params = _params()
    before = [p.detach().clone() for p in params]
    with pytest.raises(ValueError, match="skip_nonfinite.*'mmlion.GuardedOptimWrapper'"):
        ZeroRedundancyOptimizer(params, optimizer_type='Lion', lr=1e-2, **kwargs)
    assert all(torch.equal(b, p) for b, p in zip(before, params))


def test_a_checkpoint_saved_with_the_removed_option_resumes_under_the_wrapper(
        single_process_group):
    """Checkpoints of ZeRO(skip_nonfinite=True) held the inner guard's counts under
    'nonfinite' in the optimizer's state dict, where the wrapper keeps its own: the
    wrapper takes them over, and ZeRO alone loads the rest."""
    params = _params()
    zero = ZeroRedundancyOptimizer(params, optimizer_type='Lion', lr=1e-2)
    _step(zero, params)
    zero.consolidate_state_dict(to=0)
    old = dict(zero.state_dict(), nonfinite=dict(skipped=2, consecutive=1))
    wrapper = GuardedOptimWrapper(
        ZeroRedundancyOptimizer(_params(), optimizer_type='Lion', lr=1e-2))
    wrapper.load_state_dict(old)
    assert (wrapper.nonfinite_guard.skipped, wrapper.nonfinite_guard.consecutive) == (2, 1)
    alone = ZeroRedundancyOptimizer(_params(), optimizer_type='Lion', lr=1e-2)
    alone.load_state_dict(old)
    alone.consolidate_state_dict(to=0)
    assert 'nonfinite' not in alone.state_dict()
