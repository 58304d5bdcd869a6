"""The non-finite-gradient guard, and Lion's checks on state dicts it loads."""
import copy
import logging
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from mmlion.ops import lion_cpu
from mmlion.ops.loader import CPU
from mmlion.optim import Lion
from mmlion.optim.nonfinite import all_finite

BAD = [float('nan'), float('inf'), -float('inf')]


def _model_and_grads(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 5))
    params = list(model.parameters())
    return params, [torch.randn_like(p) for p in params]


def _step(optimizer, params, grads):
    for p, g in zip(params, grads):
        p.grad = g.clone()
    optimizer.step()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.complex64])
@pytest.mark.parametrize('bad', BAD)
def test_all_finite_finds_every_kind_of_bad_value(dtype, bad):
    tensors = [torch.randn(70_000).to(dtype), torch.randn(6, 5).to(dtype).t()]
    assert all_finite(tensors)
    for index in range(2):
        for position in (0, -1):
            broken = [t.clone() for t in tensors]
            real = torch.view_as_real(broken[index]) if dtype.is_complex else broken[index]
            flat = position % real.numel()
            real[np.unravel_index(flat, real.shape)] = bad
            assert not all_finite(broken), (index, position)
            # The torch fall-back (other devices) agrees with the kernel.
            norms = torch._foreach_norm(broken, float('inf'))
            assert not torch.stack(norms).isfinite().all()


def test_all_finite_accepts_the_largest_finite_values():
    assert all_finite([torch.tensor([65504.0], dtype=torch.float16),
                       torch.tensor([torch.finfo(torch.float32).max]),
                       torch.tensor([torch.finfo(torch.bfloat16).max], dtype=torch.bfloat16)])
    assert all_finite([])


@pytest.mark.skipif(not lion_cpu.available(), reason='mmlion.ops._C is not built')
def test_kernel_defers_on_other_devices():
    assert CPU.get().all_finite([torch.zeros(2, device='meta')]) is None


@pytest.mark.parametrize('bad', BAD)
@pytest.mark.parametrize('impl', [dict(), dict(foreach=True), dict(foreach=False)])
def test_nonfinite_step_is_skipped_bitwise(bad, impl):
    params, grads = _model_and_grads()
    optimizer = Lion(params, lr=1e-2, weight_decay=0.1, skip_nonfinite=True, **impl)
    _step(optimizer, params, grads)
    before = [p.detach().clone() for p in params]
    state_before = copy.deepcopy(optimizer.state_dict())
    poisoned = [g.clone() for g in grads]
    poisoned[2][1] = bad  # one element of the BN weight's gradient
    _step(optimizer, params, poisoned)
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b)
    state_after = optimizer.state_dict()
    for key in state_before['state']:
        assert torch.equal(state_after['state'][key]['exp_avg'],
                           state_before['state'][key]['exp_avg'])
    assert state_after['nonfinite'] == dict(skipped=1, consecutive=1)
    # The next good step resets the run of skips and moves the weights again.
    _step(optimizer, params, grads)
    assert optimizer.state_dict()['nonfinite'] == dict(skipped=1, consecutive=0)
    assert not torch.equal(params[0].detach(), before[0])


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_skip_is_logged_with_the_tensor():
    params, grads = _model_and_grads()
    optimizer = Lion(params, skip_nonfinite=True)
    grads[3][0] = float('nan')
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        _step(optimizer, params, grads)
    finally:
        logger.removeHandler(records)
    text = '\n'.join(records.messages)
    assert 'non-finite gradient' in text
    assert 'param group 0, parameter of shape (8,)' in text
    assert '1 in a row, 1 in total' in text


def test_without_the_guard_nan_poisons_the_momentum():
    params, grads = _model_and_grads()
    optimizer = Lion(params)
    grads[0].view(-1)[0] = float('nan')
    _step(optimizer, params, grads)
    assert not optimizer.state[params[0]]['exp_avg'].isfinite().all()


def test_too_many_skips_in_a_row_stop_training():
    params, grads = _model_and_grads()
    optimizer = Lion(params, skip_nonfinite=True, max_consecutive_skips=3)
    _step(optimizer, params, grads)
    before = [p.detach().clone() for p in params]
    grads[0].view(-1)[0] = float('inf')
    _step(optimizer, params, grads)
    _step(optimizer, params, grads)
    with pytest.raises(FloatingPointError, match='3 steps in a row.*max_consecutive_skips=3'):
        _step(optimizer, params, grads)
    for p, b in zip(params, before):
        assert torch.equal(p.detach(), b)


def test_guard_survives_copy_pickle_and_state_dict():
    params, grads = _model_and_grads()
    optimizer = Lion(params, skip_nonfinite=True, max_consecutive_skips=5)
    grads[0].view(-1)[0] = float('nan')
    _step(optimizer, params, grads)
    for clone in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        assert clone.defaults['max_consecutive_skips'] == 5
        assert clone.param_groups[0]['skip_nonfinite'] is True
        assert clone.nonfinite_guard.skipped == 1
    fresh = Lion(params, skip_nonfinite=True, max_consecutive_skips=5)
    fresh.load_state_dict(optimizer.state_dict())
    assert fresh.nonfinite_guard.state_dict() == dict(skipped=1, consecutive=1)
    # A guard-less Lion loads a guarded one's state, and the other way round.
    Lion(params).load_state_dict(optimizer.state_dict())
    optimizer.load_state_dict(Lion(params).state_dict())


def test_guard_settings_are_checked():
    p = torch.nn.Parameter(torch.ones(2))
    for bad in (0, -1, 2.5, True, '3'):
        with pytest.raises(ValueError, match=f'max_consecutive_skips={bad!r}'):
            Lion([p], skip_nonfinite=True, max_consecutive_skips=bad)
    with pytest.raises(ValueError, match="skip_nonfinite='yes'"):
        Lion([p], skip_nonfinite='yes')
    with pytest.raises(ValueError, match='skip_nonfinite=False in param group 1'):
        Lion([dict(params=[p]), dict(params=[torch.nn.Parameter(torch.ones(1)),],
                                     skip_nonfinite=False)], skip_nonfinite=True)


def _state_dict_of(optimizer_class, params, grads, **kwargs):
    optimizer = optimizer_class(params, **kwargs)
    _step(optimizer, params, grads)
    return optimizer.state_dict()


def _snapshot(optimizer):
    return copy.deepcopy(optimizer.state_dict())


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize('other, kwargs, pattern', [
    (torch.optim.AdamW, dict(lr=1e-3), r"param group 0 has the keys \['amsgrad', 'eps'\]"),
    (torch.optim.SGD, dict(lr=0.1, momentum=0.9), r"\['dampening', 'nesterov'\]"),
])
def test_loading_another_optimizers_state_is_refused(other, kwargs, pattern):
    params, grads = _model_and_grads()
    optimizer = Lion(params)
    _step(optimizer, params, grads)
    before = _snapshot(optimizer)
    foreign = _state_dict_of(other, params, grads, **kwargs)
    with pytest.raises(ValueError, match=pattern):
        optimizer.load_state_dict(foreign)
    assert _same(optimizer.state_dict(), before)


def test_loading_adam_state_without_group_keys_names_the_state():
    params, grads = _model_and_grads()
    foreign = _state_dict_of(torch.optim.AdamW, params, grads)
    for group in foreign['param_groups']:
        for key in ('eps', 'amsgrad'):
            group.pop(key)
    with pytest.raises(ValueError, match="exp_avg_sq.*saved by Adam/AdamW"):
        Lion(params).load_state_dict(foreign)


def test_loading_state_of_other_shapes_or_groups_is_refused():
    params, grads = _model_and_grads()
    saved = _state_dict_of(Lion, params, grads)
    other_params, other_grads = _model_and_grads()
    other_params[0] = torch.nn.Parameter(torch.zeros(4, 3, 3, 3))
    optimizer = Lion(other_params)
    with pytest.raises(ValueError, match=r'exp_avg of shape \(8, 3, 3, 3\).*\(4, 3, 3, 3\)'):
        optimizer.load_state_dict(saved)
    assert optimizer.state_dict()['state'] == {}
    with pytest.raises(ValueError, match='it has 1 param groups and this Lion has 2'):
        Lion([{'params': params[:2]}, {'params': params[2:]}]).load_state_dict(saved)
    with pytest.raises(ValueError, match='param group 0 has 6 parameters saved and 5 here'):
        Lion(params[:5]).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"expected a dict with keys 'state' and 'param_groups'"):
        Lion(params).load_state_dict({'state_dict': {}})
    bad_lr = copy.deepcopy(saved)
    bad_lr['param_groups'][0]['lr'] = -1.0
    with pytest.raises(ValueError, match='param group 0: Invalid learning rate: lr=-1.0'):
        Lion(params).load_state_dict(bad_lr)


def test_a_param_in_two_groups_is_named():
    params, _ = _model_and_grads()
    with pytest.raises(ValueError, match=r'shape \(8,\).*group 0 and again in the new group 1'):
        Lion([{'params': params}, {'params': [params[2]]}])


def test_sparse_gradient_error_names_the_parameter():
    p = torch.nn.Parameter(torch.ones(4))
    q = torch.nn.Parameter(torch.ones(4))
    optimizer = Lion([{'params': [q]}, {'params': [p]}], skip_nonfinite=True)
    q.grad = torch.ones(4)
    p.grad = torch.sparse_coo_tensor([[0]], [1.0], (4,))
    with pytest.raises(RuntimeError, match=r'param group 1, parameter 0 \(shape \(4,\)'):
        optimizer.step()
    assert torch.equal(q.detach(), torch.ones(4))


def _rank_local_nan(rank, world_size, port, out_dir, entry):
    """One rank of the test below: its own replica, its own gradients; rank 1's hold a
    NaN in the second step."""
    import torch.distributed as dist
    from mmengine.optim import build_optim_wrapper
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=world_size)
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    if entry == 'lion':
        optimizer = Lion(model.parameters(), lr=1e-2, skip_nonfinite=True)
        step = optimizer.step
    else:
        wrapper = build_optim_wrapper(model, dict(
            type='mmlion.GuardedOptimWrapper', optimizer=dict(type='Lion', lr=1e-2),
            clip_grad=dict(max_norm=1.0) if entry == 'wrapper_clip' else None))
        step = wrapper.step
    for index in range(3):
        for p in model.parameters():
            p.grad = torch.full_like(p, 0.5)
            if index == 1 and rank == 1:
                p.grad.view(-1)[0] = float('nan')
        before = [p.detach().clone() for p in model.parameters()]
        step()
        moved = any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
        torch.save(dict(moved=moved, params=[p.detach() for p in model.parameters()]),
                   f'{out_dir}/rank{rank}_step{index}.pth')
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize('entry', ['lion', 'wrapper', 'wrapper_clip'])
def test_a_nan_on_one_rank_makes_every_rank_skip(tmp_path, entry):
    """Under sharding each rank sees only its gradients: the decision must be global,
    or the replicas part ways. Two real gloo processes, no DDP to spread the NaN."""
    import torch.multiprocessing as mp
    from helpers import free_port
    mp.spawn(_rank_local_nan, args=(2, free_port(), str(tmp_path), entry), nprocs=2)
    for index, should_move in enumerate([True, False, True]):
        ranks = [torch.load(tmp_path / f'rank{r}_step{index}.pth') for r in range(2)]
        assert [r['moved'] for r in ranks] == [should_move] * 2, (entry, index)
        for a, b in zip(ranks[0]['params'], ranks[1]['params']):
            assert torch.equal(a, b), (entry, index)


def test_a_skipped_first_step_creates_no_state():
    params, grads = _model_and_grads()
    optimizer = Lion(params, skip_nonfinite=True)
    grads[0].view(-1)[0] = float('nan')
    _step(optimizer, params, grads)
    assert len(optimizer.state) == 0 and optimizer.nonfinite_guard.skipped == 1
