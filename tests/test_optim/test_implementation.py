"""mmlion.optim.implementation: the one decision of which implementation steps a list
of tensors, and the Lion settings that must agree with it."""
import copy

import pytest
import torch

from mmlion.ops import lion_cpu, lion_triton
from mmlion.optim import Lion
from mmlion.optim.implementation import resolve

CPU = torch.device('cpu')


@pytest.mark.parametrize('foreach, fused, name', [
    (True, None, 'foreach'), (False, None, 'for-loop'), (None, False, 'for-loop'),
    (False, False, 'for-loop'), (None, True, 'fused'), (False, True, 'fused')])
def test_what_the_user_asks_for_is_what_runs(foreach, fused, name):
    implementation = resolve(CPU, foreach, fused)
    assert implementation.name == name and not implementation.automatic
    assert not implementation.on_device  # the Triton kernel runs on CUDA only


def test_neither_flag_means_the_cpu_kernel_where_built_else_torchs_default():
    implementation = resolve(CPU, None, None, [torch.zeros(2)])
    assert implementation.automatic
    assert implementation.name == ('fused' if lion_cpu.available() else 'for-loop')
    # Meta tensors stand in for another device: torch's default, never the C++ kernel.
    meta = resolve(torch.device('meta'), None, None, [torch.zeros(2, device='meta')])
    assert meta.automatic and meta.name != 'fused'


def test_fused_on_a_triton_device_reads_its_flags_on_the_device(monkeypatch):
    monkeypatch.setattr(lion_triton, 'DEVICE_TYPES', {'cuda', 'cpu'})
    assert resolve(CPU, None, True).on_device
    assert not resolve(CPU, None, None).on_device  # opt-in: automatic never picks it


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


def test_guards_on_device_asks_the_same_resolver(monkeypatch):
    optimizer = Lion([param()], fused=True)
    assert not optimizer.guards_on_device()
    monkeypatch.setattr(lion_triton, 'DEVICE_TYPES', {'cuda', 'cpu'})
    assert optimizer.guards_on_device()
