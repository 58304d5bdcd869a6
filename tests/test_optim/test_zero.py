"""mmlion.ZeroRedundancyOptimizer on a real one-process gloo group, in-process: it
steps like Lion, guards with the shared non-finite guard, and refuses stale state."""
import pytest
import torch

from mmlion.optim import Lion, ZeroRedundancyOptimizer


def _params():
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(4))]


def _step(optimizer, params, bad=False):
    for p in params:
        p.grad = torch.full_like(p, 0.3)
    if bad:
        params[1].grad[0] = float('inf')
    optimizer.step()


def test_zero_steps_like_lion_and_skips_nonfinite_steps(single_process_group):
    zero_params, lion_params = _params(), _params()
    zero = ZeroRedundancyOptimizer(zero_params, optimizer_type='Lion', lr=1e-2,
                                   weight_decay=0.1, skip_nonfinite=True,
                                   max_consecutive_skips=3)
    lion = Lion(lion_params, lr=1e-2, weight_decay=0.1)
    for bad in (False, True, False):
        before = [p.detach().clone() for p in zero_params]
        _step(zero, zero_params, bad)
        if bad:
            assert all(torch.equal(b, p) for b, p in zip(before, zero_params))
        else:
            _step(lion, lion_params)
    for z, p in zip(zero_params, lion_params):
        assert torch.equal(z.detach(), p.detach())
    with pytest.raises(RuntimeError, match='consolidate_state_dict'):
        zero.state_dict()
    zero.consolidate_state_dict(to=0)
    state = zero.state_dict()
    assert state['nonfinite'] == dict(skipped=1, consecutive=0)
    assert all(set(s) == {'exp_avg'} for s in state['state'].values())


def test_zero_keeps_its_options_in_defaults(single_process_group):
    """``type(opt)(params, **opt.defaults)`` rebuilds the same wrapper, and the inner
    optimizer never sees the wrapper's own options (it would guard a second time)."""
    zero = ZeroRedundancyOptimizer(_params(), optimizer_type='Lion', lr=1e-2,
                                   skip_nonfinite=True, max_consecutive_skips=4)
    rebuilt = type(zero)(_params(), **zero.defaults)
    for option, value in dict(optimizer_type='Lion', skip_nonfinite=True,
                              max_consecutive_skips=4, lr=1e-2).items():
        assert rebuilt.defaults[option] == value
    assert rebuilt.skip_nonfinite and rebuilt.max_consecutive_skips == 4
    assert type(rebuilt.optim) is Lion
    assert not rebuilt.optim.defaults['skip_nonfinite']
