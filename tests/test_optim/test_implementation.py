"""mmlion.optim.implementation: the one decision of which implementation steps a list
of tensors, made when the step plan is built, and the optimizer-wide answers that are
decided as groups are added."""
import copy

import pytest
import torch

from mmlion.ops import lion_cpu, lion_triton
from mmlion.optim import Lion
from mmlion.optim import implementation
from mmlion.optim.implementation import choose


def lists(*shape, device='cpu'):
    return [torch.zeros(*shape, device=device)], [torch.ones(*shape, device=device)], \
        [torch.zeros(*shape, device=device)]


@pytest.mark.parametrize('foreach, fused, name', [
    (True, None, 'foreach'), (False, None, 'for-loop'), (None, False, 'for-loop'),
    (False, False, 'for-loop'), (None, True, 'fused'), (False, True, 'fused')])
def test_what_the_user_asks_for_is_what_runs(foreach, fused, name):
    chosen = choose(*lists(3), foreach, fused)
    assert chosen.name == name
    assert not chosen.on_device  # the Triton kernel runs on CUDA only


def test_neither_flag_means_the_cpu_kernel_where_it_takes_the_tensors():
    assert choose(*lists(3), None, None).name == ('fused' if lion_cpu.available()
                                                  else 'for-loop')
    # A tensor the kernel does not take (a negative bit): torch's default, decided here,
    # not by trying the kernel first.
    params, grads, exp_avgs = lists(3)
    assert choose(params, [torch._neg_view(grads[0])], exp_avgs, None, None).name == 'for-loop'
    # Meta tensors stand in for another device: torch's default, never the C++ kernel.
    assert choose(*lists(3, device='meta'), None, None).name != 'fused'


def test_fused_refuses_what_no_kernel_takes_before_anything_runs():
    params, grads, exp_avgs = lists(3)
    before = params[0].clone()
    with pytest.raises(RuntimeError, match='negative bit'):
        choose(params, [torch._neg_view(grads[0])], exp_avgs, None, True)
    assert torch.equal(params[0], before)


def test_fused_on_a_triton_device_reads_its_flags_on_the_device(monkeypatch):
    monkeypatch.setattr(lion_triton, 'DEVICE_TYPES', {'cuda', 'cpu'})
    assert choose(*lists(3), None, True).on_device
    assert not choose(*lists(3), None, None).on_device  # opt-in: automatic never picks it


def test_the_step_calls_the_implementation_its_plan_chose(monkeypatch):
    """Lion.step reaches the math through the chosen function, decided once per plan:
    choose runs when the plan is built, not at each step."""
    calls = []
    real_choose = implementation.choose
    monkeypatch.setattr('mmlion.optim.lion.choose',
                        lambda *a, **k: calls.append(1) or real_choose(*a, **k))
    model = torch.nn.Linear(3, 2)
    optimizer = Lion(model.parameters(), lr=1e-3)
    for _ in range(4):
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
    assert len(calls) == (1 if optimizer._step_plan is not None else 4)


def param():
    return torch.nn.Parameter(torch.zeros(3))


@pytest.mark.parametrize('groups, defaults, hands_off', [
    ([{'params': [param()]}], dict(fused=True), True),
    ([{'params': [param()]}], dict(), False),
    ([{'params': [param()]}], dict(foreach=True), False),
    # A group's own fused counts, not only the constructor's.
    ([{'params': [param()], 'fused': True}, {'params': [param()], 'fused': True}], dict(), True),
    ([{'params': [param()], 'fused': True}, {'params': [param()]}], dict(), False),
])
def test_grad_scaler_hand_off_follows_every_groups_implementation(groups, defaults, hands_off):
    optimizer = Lion(groups, **defaults)
    assert optimizer._step_supports_amp_scaling is hands_off
    assert copy.deepcopy(optimizer)._step_supports_amp_scaling is hands_off


@pytest.mark.skipif(not lion_triton.available(),
                    reason=f'fused=True on a Triton device needs it: {lion_triton.load_error()}')
def test_guards_on_device_is_decided_as_groups_are_added(monkeypatch):
    assert not Lion([param()], fused=True).guards_on_device()
    monkeypatch.setattr(lion_triton, 'DEVICE_TYPES', {'cuda', 'cpu'})
    optimizer = Lion([param()], fused=True)
    assert optimizer.guards_on_device()
    optimizer.add_param_group({'params': [param()], 'fused': None})
    assert not optimizer.guards_on_device()
