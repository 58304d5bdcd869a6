"""The host plan (mmlion.optim.step_plan and the Triton path's own): built once,
reused while nothing it depends on changes, rebuilt after each event that changes it,
and the same bits either way."""
import copy

import numpy as np
import pytest
import torch

from mmlion.ops import lion_triton
from mmlion.ops.loader import CPU
from mmlion.optim import Lion
from mmlion.optim import lion as lion_module

IMPLEMENTATIONS = [dict(foreach=True), dict(foreach=False), dict(fused=True)]


def model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5),
                               torch.nn.Linear(5, 3))


def paramwise(net, lr=1e-2):
    """One group per parameter, as MMEngine's paramwise_cfg makes: no decay for the
    norm and the biases."""
    return [{'params': [p], 'weight_decay': 0.0 if p.dim() == 1 else 0.5, 'lr': lr}
            for p in net.parameters()]


def backward(net, seed):
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(seed))
    net(x).square().sum().backward()


needs_extension = pytest.mark.skipif(CPU.get() is None,
                                     reason=f'no plan without the C++ extension: '
                                            f'{CPU.load_error()}')


class Builds:
    """Counts how often Lion.step had to build its buckets by the loop over groups."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = Lion._plan_buckets

        def counted(optimizer):
            self.count += 1
            return original(optimizer)
        monkeypatch.setattr(Lion, '_plan_buckets', counted)


def train(net, optimizer, steps, start=0, between=None):
    for step in range(start, start + steps):
        optimizer.zero_grad()  # set_to_none: new gradient Tensors each step
        backward(net, step)
        if between is not None:
            between(step)
        optimizer.step()


@pytest.mark.parametrize('options', IMPLEMENTATIONS, ids=str)
@needs_extension
def test_plan_is_reused_and_the_bits_are_the_same(options, monkeypatch):
    builds = Builds(monkeypatch)
    net, twin = model(), model()
    planned = Lion(paramwise(net), **options)
    unplanned = Lion(paramwise(twin), **options)
    # a scheduler changing every lr alike keeps the buckets
    lrs = [1e-2, 8e-3, 5e-3, 2e-3, 1e-3]
    for step, lr in enumerate(lrs):
        for optimizer, module in ((planned, net), (unplanned, twin)):
            for group in optimizer.param_groups:
                group['lr'] = lr
            optimizer.zero_grad()
            backward(module, step)
            if optimizer is unplanned:
                optimizer._step_plan = None  # the loop over groups, every step
            optimizer.step()
    assert builds.count == 1 + len(lrs)  # planned once, unplanned every step
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def _new_group(net, optimizer):
    extra = torch.nn.Parameter(torch.zeros(3))
    net.register_parameter('extra', extra)
    optimizer.add_param_group({'params': [extra]})


EVENTS = {
    'add_param_group': _new_group,
    'load_state_dict': lambda net, opt: opt.load_state_dict(copy.deepcopy(opt.state_dict())),
    'a gradient goes (a frozen branch)': lambda net, opt: setattr(net[2].bias, 'grad', None),
    'one group gets its own lr': lambda net, opt: opt.param_groups[0].update(lr=3e-3),
    'weight decay changes': lambda net, opt: [g.update(weight_decay=0.1)
                                              for g in opt.param_groups],
    'a Tensor lr': lambda net, opt: [g.update(lr=torch.tensor(1e-2))
                                     for g in opt.param_groups],
    'betas change (a momentum scheduler)': lambda net, opt: [g.update(betas=(0.8, 0.99))
                                                             for g in opt.param_groups],
    'a group gets initial_lr': lambda net, opt: opt.param_groups[1].update(initial_lr=1e-2),
    'a group is replaced by its copy': lambda net, opt: opt.param_groups.__setitem__(
        0, dict(opt.param_groups[0])),
    'betas turned a list, then mutated in place': lambda net, opt: [
        g.update(betas=list(g['betas'])) for g in opt.param_groups],
}


@pytest.mark.parametrize('event', list(EVENTS))
@needs_extension
def test_plan_is_rebuilt_after_what_changes_it(event, monkeypatch):
    builds = Builds(monkeypatch)
    net, twin = model(), model()
    planned, unplanned = Lion(paramwise(net)), Lion(paramwise(twin))
    for optimizer, module in ((planned, net), (unplanned, twin)):
        train(module, optimizer, 2)
    assert builds.count == 2
    for optimizer, module in ((planned, net), (unplanned, twin)):
        def at_step_3(step, optimizer=optimizer, module=module):
            if step == 3:
                EVENTS[event](module, optimizer)
            if optimizer is unplanned:
                optimizer._step_plan = None
        train(module, optimizer, 3, start=2, between=at_step_3)
    rebuilt = builds.count - 2 - 3  # the unplanned optimizer built 3 times
    assert rebuilt >= 1, event
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b), event


@needs_extension
def test_deepcopy_and_pickle_drop_the_plan():
    net = model()
    optimizer = Lion(paramwise(net))
    train(net, optimizer, 1)
    assert optimizer._step_plan is not None
    assert copy.deepcopy(optimizer)._step_plan is None


def test_sparse_gradient_after_a_plan_is_still_refused():
    embedding = torch.nn.Embedding(4, 3)
    optimizer = Lion(embedding.parameters())
    embedding(torch.tensor([1])).sum().backward()
    optimizer.step()
    embedding.weight.grad = torch.sparse_coo_tensor([[0]], [[1.0, 1.0, 1.0]], (4, 3))
    with pytest.raises(RuntimeError, match='sparse'):
        optimizer.step()


class TableBuilds:
    """Counts the Triton path's pointer-table builds (each host plan miss builds one per
    launch)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = lion_triton._table

        def counted(*lists):
            self.count += 1
            return original(*lists)
        monkeypatch.setattr(lion_triton, '_table', counted)


def test_triton_host_plan_follows_the_storages(triton_device, monkeypatch):
    """The kernel's host plan is reused while parameters, gradients and momenta keep
    their storage; new gradient storages (zero_grad(set_to_none=True) and a backward
    that the allocator serves elsewhere) and a moved parameter (FSDP's resharding)
    rebuild it; the results equal the plan-less step's bit for bit."""
    tables = TableBuilds(monkeypatch)
    net, twin = model().to(triton_device), model().to(triton_device)
    planned = Lion(paramwise(net), fused=True)
    unplanned = Lion(paramwise(twin), fused=True)
    kept = {}

    def same_storage(step, net):
        for p in net.parameters():  # the gradients land where they were
            if p in kept:
                kept[p].copy_(p.grad)
                p.grad = kept[p].view(p.grad.shape)
            else:
                kept[p] = p.grad

    for step in range(3):
        for optimizer, module in ((planned, net), (unplanned, twin)):
            optimizer.zero_grad()
            backward(module, step)
            same_storage(step, module) if module is net else None
            if optimizer is unplanned:
                optimizer._step_plan = None
                lion_triton._tables.clear()
            optimizer.step()
    planned_builds = tables.count - 3 * 2  # unplanned: one bucket pair, 3 steps
    assert planned_builds == 2  # two buckets (decay, no decay), built at step 0 only

    before = tables.count
    with torch.no_grad():
        net[0].weight.data = net[0].weight.data.clone()  # the parameter moves
    planned.zero_grad()
    backward(net, 3)
    planned.step()
    assert tables.count > before
    unplanned.zero_grad()
    backward(twin, 3)
    unplanned.step()
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def test_state_written_past_load_state_dict_rebuilds_the_plan():
    """torch's ZeroRedundancyOptimizer.load_state_dict writes its inner optimizer's state
    directly: the next step must use the loaded momenta, not the plan's old ones."""
    net, twin = model(), model()
    planned, reference = Lion(paramwise(net)), Lion(paramwise(twin))
    for optimizer, module in ((planned, net), (reference, twin)):
        train(module, optimizer, 2)
    for p in net.parameters():  # as ZeRO does: a new state dict per parameter
        planned.state[p] = {'exp_avg': torch.full_like(p, 0.5)}
    for p in twin.parameters():
        reference.state[p] = {'exp_avg': torch.full_like(p, 0.5)}
        reference._step_plan = None
    for optimizer, module in ((planned, net), (reference, twin)):
        train(module, optimizer, 1, start=2)
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)
    for p, q in zip(net.parameters(), twin.parameters()):
        assert torch.equal(planned.state[p]['exp_avg'], reference.state[q]['exp_avg'])


def test_triton_host_plan_sees_a_parameter_shrunk_in_place(triton_device, monkeypatch):
    """A parameter whose data becomes a shorter view of the same memory (the same
    address, fewer elements) must not be stepped with the old table's length: the
    memory past the view stays as it was."""
    tables = TableBuilds(monkeypatch)
    memory = torch.zeros(8, device=triton_device)
    grad = torch.ones(8, device=triton_device)
    p = torch.nn.Parameter(memory.view(8))
    optimizer = Lion([p], lr=0.5, fused=True)
    for _ in range(2):
        p.grad = grad.view(8)  # a new gradient Tensor on the same memory: reused
        optimizer.step()
    assert tables.count == 1
    exp_avg = optimizer.state[p]['exp_avg']
    with torch.no_grad():  # the same objects, at the same addresses, half as long
        p.data, exp_avg.data = memory[:4], exp_avg[:4]
    p.grad = grad[:4]
    optimizer.step()
    assert tables.count == 2
    assert memory[:4].tolist() == [-1.5] * 4 and memory[4:].tolist() == [-1.0] * 4


def _sparse(net, opt):
    net[2].bias.grad = net[2].bias.grad.to_sparse()


# event -> whether the plan still holds after it
CHECKED = {
    'nothing': (lambda net, opt: None, True),
    'every lr alike (a scheduler)': (
        lambda net, opt: [g.update(lr=g['lr'] * 0.5) for g in opt.param_groups], True),
    'every lr a numpy float (a scheduler computing with numpy)': (
        lambda net, opt: [g.update(lr=np.float64(g['lr'] * 0.5)) for g in opt.param_groups],
        True),
    'new gradient Tensors': (lambda net, opt: [setattr(p, 'grad', p.grad.clone())
                                               for p in net.parameters()], True),
    'one lr differs from its bucket': (lambda net, opt: opt.param_groups[0].update(lr=3e-3),
                                       False),
    'an lr of another type': (lambda net, opt: opt.param_groups[0].update(lr='0.01'), False),
    'a Tensor lr': (lambda net, opt: opt.param_groups[0].update(lr=torch.tensor(1e-2)),
                    False),
    'weight decay': (lambda net, opt: opt.param_groups[1].update(weight_decay=0.3), False),
    'betas': (lambda net, opt: opt.param_groups[2].update(betas=(0.8, 0.99)), False),
    'a key added': (lambda net, opt: opt.param_groups[0].update(extra=1), False),
    'a key swapped for another': (
        lambda net, opt: (opt.param_groups[0].pop('maximize'),
                          opt.param_groups[0].update(extra=1)), False),
    'a group appended': (lambda net, opt: opt.param_groups.append(
        {**opt.param_groups[0], 'params': []}), False),
    'a group replaced by its copy': (lambda net, opt: opt.param_groups.__setitem__(
        0, dict(opt.param_groups[0])), False),
    'a parameter list changed': (
        lambda net, opt: opt.param_groups[0]['params'].append(torch.nn.Parameter(
            torch.zeros(1))), False),
    'a gradient gone': (lambda net, opt: setattr(net[2].bias, 'grad', None), False),
    'a gradient sparse': (_sparse, False),
    'a momentum replaced (ZeRO)': (lambda net, opt: opt.state.__setitem__(
        net[0].weight, {'exp_avg': torch.zeros_like(net[0].weight)}), False),
    'a momentum removed': (lambda net, opt: opt.state.pop(net[0].weight), False),
    'betas mutated in place': (lambda net, opt: opt.param_groups[2]['betas'].__setitem__(
        1, 0.5), False),
    'a list of betas replaced by an equal list': (lambda net, opt: opt.param_groups[2].update(
        betas=list(opt.param_groups[2]['betas'])), True),
    'a tuple of betas replaced by an equal list': (
        lambda net, opt: opt.param_groups[1].update(betas=list(opt.param_groups[1]['betas'])),
        False),
    'a tuple of betas replaced by an equal tuple': (
        lambda net, opt: opt.param_groups[1].update(
            betas=tuple(float(b) for b in opt.param_groups[1]['betas'])), True),
    'numpy betas mutated in place': (lambda net, opt: opt.param_groups[3]['betas'].__setitem__(
        0, 0.5), False),
    'initial_lr on one member': (lambda net, opt: opt.param_groups[2].update(
        initial_lr=1e-2), False),
    'initial_lr on every group alike': (lambda net, opt: [g.update(initial_lr=1e-2)
                                                          for g in opt.param_groups], False),
    'a momentum turned float64 in place': (
        lambda net, opt: setattr(opt.state[net[0].weight]['exp_avg'], 'data',
                                 opt.state[net[0].weight]['exp_avg'].data.double()), False),
    'two momenta trade owners, values in order': (
        lambda net, opt: _trade(opt, net[0].bias, net[1].bias), False),
}


def _trade(opt, p, q):
    items = list(opt.state.items())
    keys = [q if k is p else p if k is q else k for k, _ in items]
    opt.state.clear()
    opt.state.update(zip(keys, (v for _, v in items)))


@needs_extension
@pytest.mark.parametrize('event', list(CHECKED))
def test_the_check_holds_exactly_while_nothing_it_read_changed(event):
    """mmlion.ops._C.PlanCheck: the gradients (the same objects) where the plan holds,
    None where it does not."""
    change, holds = CHECKED[event]
    net = model()
    optimizer = Lion(paramwise(net))
    train(net, optimizer, 1)
    backward(net, 1)
    groups, state = optimizer.param_groups, optimizer.state
    groups[2]['betas'] = list(groups[2]['betas'])     # the values alike, the types not
    groups[3]['betas'] = np.array(groups[3]['betas'])
    leaders = [0, 1, 1, 1, 0, 1]  # paramwise(): weights decayed, with group 0; the rest with 1
    check = CPU.get().PlanCheck(groups, state, ('betas', 'weight_decay', 'maximize'),
                                ('lr', 'initial_lr'), leaders)
    change(net, optimizer)
    answer = check.gradients(groups, state)
    if holds:
        assert answer is not None, event
        expected = [p.grad for group in groups for p in group['params']]
        assert len(answer) == len(expected)
        assert all(a is b for a, b in zip(answer, expected)), event
    else:
        assert answer is None, event


@pytest.mark.parametrize('args, error', [
    (([1], {}, ('a',), ('lr',), [0]), TypeError),                          # not a dict
    (([{'params': [], 'a': 1, 'lr': 1.0}], {}, ('a',), ('lr',), [5]), RuntimeError),  # leader
    (([{'params': 3, 'a': 1, 'lr': 1.0}], {}, ('a',), ('lr',), [0]), TypeError),  # params
    (([{'lr': 1.0}], {}, ('a',), ('lr',), [0]), KeyError),                # no params
    (('groups', {}, (), (), []), TypeError),
])
def test_the_compiled_check_raises_on_what_it_cannot_hold(args, error):
    """Compiled code checks what it is given: an error, never a crash."""
    if CPU.get() is None:
        pytest.skip(f'the C++ extension is not built: {CPU.load_error()}')
    with pytest.raises(error):
        CPU.get().PlanCheck(*args)


def test_a_key_added_to_the_table_separates_groups_that_differ_in_it(monkeypatch):
    """STEP_KEYS is the one list of what a step reads: groups that differ in any of its
    keys never share a bucket, and _hyperparameters reads no other key."""
    net = model()
    groups = [{'params': [p], 'extra': index % 2} for index, p in enumerate(net.parameters())]
    optimizer = Lion(groups)
    backward(net, 0)
    assert len(optimizer._plan_buckets()) == 1
    monkeypatch.setitem(lion_module.STEP_KEYS, 'extra', lion_module.FIXED)
    optimizer._step_plan = None
    buckets = optimizer._plan_buckets()
    assert len(buckets) == 2
    for bucket in buckets:
        extras = {optimizer.param_groups[i]['extra'] for i, group in
                  enumerate(optimizer.param_groups)
                  if any(p is q for p in group['params'] for q in bucket.params)}
        assert len(extras) == 1
    group = optimizer.param_groups[0]
    only_the_table = {k: group[k] for k in lion_module.STEP_KEYS if k in group}
    assert lion_module._hyperparameters(only_the_table) == lion_module._hyperparameters(group)


@needs_extension
@pytest.mark.parametrize('value', [object(), {'a': 1}, torch.tensor(1e-2)],
                         ids=['an object', 'a dict', 'a Tensor'])
def test_a_value_the_check_cannot_compare_means_no_plan(value, monkeypatch):
    monkeypatch.setitem(lion_module.STEP_KEYS, 'extra', lion_module.FIXED)
    net = model()
    optimizer = Lion([{'params': list(net.parameters()), 'extra': value}])
    train(net, optimizer, 1)
    assert optimizer._step_plan is None


def test_without_the_extension_there_is_no_plan_and_the_same_bits(monkeypatch):
    net, twin = model(), model()
    planned = Lion(paramwise(net), foreach=True)
    train(net, planned, 3)
    monkeypatch.setattr(CPU, 'get', lambda: None)
    unplanned = Lion(paramwise(twin), foreach=True)
    train(twin, unplanned, 3)
    assert unplanned._step_plan is None
    for a, b in zip(net.parameters(), twin.parameters()):
        assert torch.equal(a, b)
