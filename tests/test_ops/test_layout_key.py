"""mmlion.ops.common.layout_key, what a host plan's pointer tables are checked against:
equal exactly while every tensor keeps where its memory starts, its dtype, device,
sizes and strides; None for what a kernel cannot address, and where the C++ extension
is not built (there is then no host plan to reuse)."""
import pytest
import torch

from mmlion.ops import common
from mmlion.ops.loader import CPU


@pytest.fixture
def layout_key():
    if CPU.get() is None:
        pytest.skip(f'the C++ extension is not built: {CPU.load_error()}')
    return common.layout_key


def tensors():
    storage = torch.zeros(64)
    return [storage[:8].view(2, 4), torch.zeros(3, dtype=torch.bfloat16), storage[8:16]]


CHANGES = {
    'moved (FSDP resharding)': lambda ts: ts.__setitem__(0, ts[0].clone()),
    'resized at the same address': lambda ts: ts.__setitem__(2, ts[2][:4]),
    'reshaped': lambda ts: ts.__setitem__(0, ts[0].view(4, 2)),
    'strided differently': lambda ts: ts.__setitem__(0, ts[0].t()),
    'another dtype, same memory': lambda ts: ts.__setitem__(2, ts[2].view(torch.int32)),
    'one more tensor': lambda ts: ts.append(torch.zeros(1)),
}


def test_the_same_layout_gives_the_same_key(layout_key):
    ts = tensors()
    again = [t.view(t.shape) for t in ts]  # new Tensor objects, the same memory and layout
    assert layout_key(ts, ts[:1]) == layout_key(again, again[:1])
    assert layout_key(ts, ts[:1]) != layout_key(ts[:1], ts)  # where the lists split counts


@pytest.mark.parametrize('change', list(CHANGES))
def test_any_change_of_layout_changes_the_key(layout_key, change):
    ts = tensors()
    before = layout_key(ts)
    CHANGES[change](ts)
    assert layout_key(ts) != before


class Subclass(torch.Tensor):
    """As DTensor is: a Tensor subclass, whose data a kernel cannot address."""


@pytest.mark.parametrize('odd', ['sparse', 'subclass', 'None', 'conjugate bit', 'negative bit'])
def test_what_no_kernel_can_address_has_no_key(layout_key, odd):
    """A lazy conjugate or negative view's memory does not hold its values: a kernel that
    read it would step with the wrong sign."""
    item = {'sparse': lambda: torch.zeros(2, 2).to_sparse(),
            'subclass': lambda: torch.Tensor._make_subclass(Subclass, torch.zeros(2)),
            'None': lambda: None,
            'conjugate bit': lambda: torch.zeros(2, dtype=torch.complex64).conj(),
            'negative bit': lambda: torch._neg_view(torch.zeros(2))}[odd]()
    assert layout_key(tensors(), [item]) is None


def test_without_the_extension_there_is_no_key(monkeypatch):
    monkeypatch.setattr(CPU, 'get', lambda: None)
    assert common.layout_key(tensors()) is None
