"""The step plan, correct by construction: random sequences of steps and of the actions a
user, a scheduler or an engine takes between them, each step compared bit for bit with
the same implementation without a plan, and with a plain per-parameter Lion (written
out below) to a tolerance. Hypothesis's stateful testing picks the sequences and shrinks
a failure to its shortest.

Three Lions see the same actions on their own copies of the parameters: ``planned``
(the plan kept), ``unplanned`` (dropped before every step), ``reference`` (a Lion whose
step is :func:`reference_step`). A step that raises must raise in both of the first two,
touching nothing. The fast profile runs in the fast subset; ``slow`` runs many more.

Run against the code before the plan was made correct by construction (with the actions
behind each alone), it finds each defect that design let through: betas mutated in place
in a list; initial_lr changed on a bucket member while another group has none; a bf16
momentum turned float32 in place; two parameters trading momenta with the values in
order; a conjugate-bit gradient on the Triton path.
"""
import copy
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)

from mmlion.ops.loader import CPU
from mmlion.optim import Lion

# The parameters a machine starts with; new ones (add_param_group) repeat these shapes.
SPECS = [((4, 3), torch.float32), ((3,), torch.float32), ((4, 3), torch.float32),
         ((5,), torch.float32), ((2,), torch.complex64)]
MAX_PARAMS = 8
STEPS_TAKEN: list = []  # every step any machine took: a test sees that it ran some
LRS = st.sampled_from([1e-2, 5e-3, 2e-3])
BETAS = st.sampled_from([(0.9, 0.99), (0.95, 0.98), (0.5, 0.9)])
WEIGHT_DECAYS = st.sampled_from([0.1, 0.5, 0.0])  # decay first: a wrong decay shows
# 'same memory': where the last gradient lay, as a backward into the caching allocator's
# blocks gives (the GPU kernel's host plan is then reused); 'new memory': elsewhere.
GRAD_STYLES = ['same memory', 'new memory', 'offset', 'transposed', 'negative bit',
               'conjugate bit', 'none']
# Planned and unplanned give the same bits; the reference computes in its own order.
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def reference_step(optimizer: Lion) -> None:
    """The paper's update, one parameter at a time, reading every value from the
    parameter's own group and its own state: what any plan must agree with."""
    for group in optimizer.param_groups:
        lr = float(group['lr'])
        beta1, beta2 = (float(b) for b in group['betas'])
        if group['decoupled_weight_decay']:
            decay = 1 - group['weight_decay'] * lr / float(group.get('initial_lr', lr))
        else:
            decay = 1 - lr * group['weight_decay']
        for p in group['params']:
            if p.grad is None:
                continue
            state = optimizer.state[p]
            if 'exp_avg' not in state:
                state['exp_avg'] = torch.zeros_like(p, dtype=group['state_dtype'])
            elif group['state_dtype'] is not None:
                state['exp_avg'] = state['exp_avg'].to(group['state_dtype'])
            m = state['exp_avg']
            real = torch.view_as_real if p.is_complex() else (lambda t: t)
            g = real(p.grad.resolve_conj().resolve_neg()).float()
            if group['maximize']:
                g = -g
            m32 = real(m).float()
            with torch.no_grad():
                update = (m32 * beta1 + g * (1 - beta1)).sign()
                if group['cautious']:  # timm's rule, as Lion documents it
                    mask = (update * g > 0).float()
                    update = update * mask / mask.mean().clamp(min=1e-3)
                real(p).copy_(real(p).float() * decay - lr * update)
                real(m).copy_(m32 * beta2 + g * (1 - beta2))


class PlanMachine(RuleBasedStateMachine):
    """Three Lions, the same actions; OPTIONS (the implementation) and DEVICE are set by
    each test."""
    OPTIONS: dict = {}
    DEVICE = torch.device('cpu')

    @initialize(data=st.data(), n_groups=st.integers(1, 5),
                state_dtype=st.sampled_from([None, torch.bfloat16]))
    def build(self, data, n_groups, state_dtype):
        """Parameters dealt round the groups (one group per parameter at most, as
        paramwise_cfg makes), each group given one of two profiles of settings, so that
        several groups share a bucket and others do not."""
        specs = SPECS if state_dtype is None else SPECS[:-1]  # no bf16 state for complex
        where = [k % n_groups for k in range(len(specs))]
        decoupled = data.draw(st.booleans())  # one profile each way: mixed groups
        profiles = [dict(lr=data.draw(LRS), betas=data.draw(BETAS),
                         weight_decay=data.draw(WEIGHT_DECAYS),
                         decoupled_weight_decay=decoupled != (k == 1)) for k in range(2)]
        settings_ = [profiles[data.draw(st.integers(0, 1))] for _ in range(n_groups)]
        self.seed = 0
        self.styles = ['same memory'] * len(specs)
        self.worlds = {}
        for name in ('planned', 'unplanned', 'reference'):
            gen = torch.Generator().manual_seed(0)
            params = [torch.nn.Parameter(torch.randn(shape, generator=gen, dtype=dtype)
                                         .to(self.DEVICE)) for shape, dtype in specs]
            groups = [dict(params=[p for p, g in zip(params, where) if g == i], **s)
                      for i, s in enumerate(settings_)]
            groups = [g for g in groups if g['params']] or [dict(params=params)]
            optimizer = Lion(groups, state_dtype=state_dtype, **self.OPTIONS)
            self.worlds[name] = (optimizer, params)

    def each(self, action):
        """Apply ``action(optimizer, params)`` to every world."""
        for optimizer, params in self.worlds.values():
            action(optimizer, params)

    # steps ---------------------------------------------------------------------------

    def _set_grads(self, params):
        gen = torch.Generator().manual_seed(self.seed)
        for p, style in zip(params, self.styles):
            g = torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
            if style == 'none':
                g = None
            elif style == 'same memory':
                g = self._memory(p, g)
            elif style == 'offset':  # a view into a larger storage
                g = torch.cat([g.new_zeros(1), g.flatten()])[1:].view(p.shape)
            elif style == 'transposed' and g.dim() == 2:
                g = g.t().contiguous().t()
            elif style == 'negative bit':  # the values of g, stored negated
                g = torch._neg_view(self._memory(p, -g))
            elif style == 'conjugate bit' and g.is_complex():  # g, stored conjugated
                g = self._memory(p, g.conj().resolve_conj()).conj()
            p.grad = g

    @staticmethod
    def _memory(p, values):
        """``values`` written where the last gradient lay when it can hold them (a
        host plan keyed on addresses then sees the same memory), else ``values``."""
        last = p.grad
        if last is None or last.is_conj() or last.is_neg() or last.stride() != values.stride():
            return values
        return last.copy_(values)

    def _step(self):
        self.seed += 1
        STEPS_TAKEN.append(self.OPTIONS)
        outcomes = {}
        for name, (optimizer, params) in self.worlds.items():
            self._set_grads(params)
            before = [p.detach().clone() for p in params]
            try:
                if name == 'reference':
                    reference_step(optimizer)
                else:
                    if name == 'unplanned':
                        optimizer._step_plan = None
                    optimizer.step()
                outcomes[name] = None
            except (RuntimeError, ValueError) as error:
                outcomes[name] = type(error)
                assert all(torch.equal(a, b) for a, b in zip(before, params)), name
        assert outcomes['planned'] == outcomes['unplanned'], outcomes
        if outcomes['planned'] is not None and outcomes['reference'] is None:
            self._undo_reference()
        if outcomes['planned'] is None and outcomes['reference'] is not None:
            raise AssertionError(f'the reference raised {outcomes["reference"]}')

    # Hypothesis draws rules about equally often: a step is drawn as often as three
    # actions, so that sequences step between their actions.
    step = rule()(_step)
    step_again = rule()(_step)
    step_once_more = rule()(_step)

    def _undo_reference(self):
        """A step that Lion refuses (a negative bit under fused=True, say) is compared
        by its refusal: the reference goes back to the others' parameters and state."""
        optimizer, params = self.worlds['planned']
        reference, ref_params = self.worlds['reference']
        with torch.no_grad():
            for p, q in zip(params, ref_params):
                q.copy_(p)
                if 'exp_avg' in optimizer.state.get(p, {}):
                    reference.state[q]['exp_avg'] = optimizer.state[p]['exp_avg'].clone()
                else:
                    reference.state.pop(q, None)

    @invariant()
    def same_parameters_and_momenta(self):
        if not hasattr(self, 'worlds'):
            return
        planned, params = self.worlds['planned']
        unplanned, twins = self.worlds['unplanned']
        reference, refs = self.worlds['reference']
        for p, q, r in zip(params, twins, refs):
            assert torch.equal(p, q)
            torch.testing.assert_close(p, r, **TOLERANCE)
            m, n = planned.state.get(p, {}).get('exp_avg'), unplanned.state.get(q, {}).get(
                'exp_avg')
            assert (m is None) == (n is None)
            if m is not None:
                assert m.dtype == n.dtype and torch.equal(m, n)
                torch.testing.assert_close(m, reference.state[r]['exp_avg'], **TOLERANCE)

    # hyperparameters -----------------------------------------------------------------

    @rule(data=st.data(), lr=LRS, kind=st.sampled_from(['float', 'numpy', 'tensor']))
    def set_lr(self, data, lr, kind):
        index = data.draw(st.integers(0, len(self.worlds['planned'][0].param_groups) - 1))
        value = {'float': lambda: lr, 'numpy': lambda: np.float64(lr),
                 'tensor': lambda: torch.tensor(lr)}[kind]
        self.each(lambda opt, params: opt.param_groups[index].update(lr=value()))

    @rule(factor=st.sampled_from([0.5, 0.9]))
    def scheduler_scales_every_lr(self, factor):
        def scale(opt, params):
            for group in opt.param_groups:
                group['lr'] = group['lr'] * factor
        self.each(scale)

    @rule(data=st.data(), how=st.sampled_from(['list', 'numpy', 'tuple']))
    def betas_retyped(self, data, how):
        index = data.draw(st.integers(0, len(self.worlds['planned'][0].param_groups) - 1))
        to = {'list': list, 'numpy': np.array, 'tuple': tuple}[how]
        self.each(lambda opt, params: opt.param_groups[index].update(
            betas=to([float(b) for b in opt.param_groups[index]['betas']])))

    @rule(data=st.data(), which=st.integers(0, 1), value=st.sampled_from([0.5, 0.8, 0.999]))
    def betas_mutated_in_place(self, data, which, value):
        index = data.draw(st.integers(0, len(self.worlds['planned'][0].param_groups) - 1))

        def mutate(opt, params):
            betas = opt.param_groups[index]['betas']
            if isinstance(betas, tuple):
                betas = (value, betas[1]) if which == 0 else (betas[0], value)
                opt.param_groups[index]['betas'] = betas
            else:
                betas[which] = value  # a list or numpy array, in place
        self.each(mutate)

    @rule(data=st.data(), weight_decay=WEIGHT_DECAYS)
    def set_weight_decay(self, data, weight_decay):
        index = data.draw(st.integers(0, len(self.worlds['planned'][0].param_groups) - 1))
        self.each(lambda opt, params: opt.param_groups[index].update(
            weight_decay=weight_decay))

    @rule(data=st.data(), initial_lr=st.sampled_from([2e-2, 5e-3, None]))
    def set_initial_lr(self, data, initial_lr):
        index = data.draw(st.integers(0, len(self.worlds['planned'][0].param_groups) - 1))

        def set_(opt, params):
            group = opt.param_groups[index]
            if initial_lr is None and not group['decoupled_weight_decay']:
                group.pop('initial_lr', None)
            elif initial_lr is not None:
                group['initial_lr'] = initial_lr
        self.each(set_)

    @rule(data=st.data(), key=st.sampled_from(['maximize', 'cautious']))
    def flip_a_flag(self, data, key):
        index = data.draw(st.integers(0, len(self.worlds['planned'][0].param_groups) - 1))
        self.each(lambda opt, params: opt.param_groups[index].update(
            {key: not opt.param_groups[index][key]}))

    # groups and parameters -----------------------------------------------------------

    @precondition(lambda self: len(self.worlds['planned'][1]) < MAX_PARAMS)
    @rule(spec=st.sampled_from(SPECS[:-1]), lr=LRS)
    def add_param_group(self, spec, lr):
        shape, dtype = spec
        self.styles.append('same memory')

        def add(opt, params):
            p = torch.nn.Parameter(torch.ones(shape, dtype=dtype, device=self.DEVICE))
            params.append(p)
            opt.add_param_group(dict(params=[p], lr=lr))
        self.each(add)

    @rule(how=st.sampled_from(['reverse', 'rotate', 'swap params', 'move a param',
                               'remove the last group', 'replace by a copy']))
    def regroup(self, how):
        def regroup_(opt, params):
            groups = opt.param_groups
            if how == 'reverse':
                groups.reverse()
            elif how == 'rotate':
                groups.append(groups.pop(0))
            elif how == 'swap params' and len(groups) > 1:
                groups[0]['params'], groups[-1]['params'] = (groups[-1]['params'],
                                                             groups[0]['params'])
            elif how == 'move a param' and len(groups) > 1 and len(groups[0]['params']) > 1:
                groups[-1]['params'].append(groups[0]['params'].pop())
            elif how == 'remove the last group' and len(groups) > 1:
                groups.pop()
            elif how == 'replace by a copy':
                groups[0] = dict(groups[0])
        self.each(regroup_)

    @rule(data=st.data(), how=st.sampled_from(['clone', 'transposed layout']))
    def parameter_data_replaced(self, data, how):
        k = data.draw(st.integers(0, len(self.styles) - 1))

        def replace(opt, params):
            p = params[k]
            with torch.no_grad():
                if how == 'clone' or p.dim() != 2:
                    p.data = p.data.clone()
                else:
                    p.data = p.data.t().contiguous().t()
        self.each(replace)

    @rule(data=st.data(), style=st.sampled_from(GRAD_STYLES))
    def gradient_layout(self, data, style):
        self.styles[data.draw(st.integers(0, len(self.styles) - 1))] = style

    # state ---------------------------------------------------------------------------

    @rule(data=st.data(), how=st.sampled_from(['replaced (ZeRO)', 'removed', 'to float32',
                                               'to bfloat16', 'loaded']))
    def state_changed(self, data, how):
        k = data.draw(st.integers(0, len(self.styles) - 1))

        def change(opt, params):
            state = opt.state.get(params[k])
            if how == 'loaded':
                grouped = {id(p) for group in opt.param_groups for p in group['params']}
                if all(id(p) in grouped for p in opt.state):  # else torch cannot save it
                    opt.load_state_dict(copy.deepcopy(opt.state_dict()))
            elif state is None or 'exp_avg' not in state:
                return
            elif how == 'replaced (ZeRO)':
                opt.state[params[k]] = {'exp_avg': state['exp_avg'].clone()}
            elif how == 'removed':
                del opt.state[params[k]]
            elif not state['exp_avg'].is_complex():  # the same Tensor, another dtype
                dtype = torch.float32 if how == 'to float32' else torch.bfloat16
                state['exp_avg'].data = state['exp_avg'].data.to(dtype)
        self.each(change)

    @rule(data=st.data())
    def momenta_trade_owners(self, data):
        """The state rebuilt with two parameters of one shape trading momenta, the
        values in their old order."""
        k = data.draw(st.integers(0, len(self.styles) - 1))
        j = data.draw(st.integers(0, len(self.styles) - 1))

        def trade(opt, params):
            p, q = params[k], params[j]
            if p is q or p.shape != q.shape or p.dtype != q.dtype or \
                    p not in opt.state or q not in opt.state:
                return
            items = list(opt.state.items())
            keys = [q if key is p else p if key is q else key for key, _ in items]
            opt.state.clear()
            for key, (_, value) in zip(keys, items):
                opt.state[key] = value
        self.each(trade)


def run(options: dict, examples: int, steps: int, device: str = 'cpu') -> None:
    machine = type('Machine', (PlanMachine,), dict(OPTIONS=dict(options),
                                                   DEVICE=torch.device(device)))
    STEPS_TAKEN.clear()
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=list(HealthCheck), derandomize=True,
        print_blob=True))
    print(f'{len(STEPS_TAKEN)} steps in {examples} sequences')
    assert len(STEPS_TAKEN) >= examples  # the sequences stepped, between their actions


IMPLEMENTATIONS = {'default (C++ kernel)': dict(), 'foreach': dict(foreach=True),
                   'for-loop': dict(foreach=False), 'fused': dict(fused=True)}


@pytest.mark.parametrize('implementation', list(IMPLEMENTATIONS))
def test_the_plan_never_changes_a_step(implementation):
    if CPU.get() is None:
        pytest.skip(f'no plan without the C++ extension: {CPU.load_error()}')
    run(IMPLEMENTATIONS[implementation], examples=int(os.environ.get('PLAN_EXAMPLES', 25)),
        steps=20)


def test_the_plan_never_changes_a_triton_step(triton_device):
    if CPU.get() is None:
        pytest.skip(f'no plan without the C++ extension: {CPU.load_error()}')
    run(dict(fused=True), examples=int(os.environ.get('PLAN_EXAMPLES', 4)), steps=12,
        device=triton_device)


@pytest.mark.slow
@pytest.mark.parametrize('implementation', list(IMPLEMENTATIONS) + ['triton'])
def test_the_plan_never_changes_a_step_long(implementation, request):
    if CPU.get() is None:
        pytest.skip(f'no plan without the C++ extension: {CPU.load_error()}')
    if implementation == 'triton':
        run(dict(fused=True), examples=40, steps=25,
            device=request.getfixturevalue('triton_device'))
    else:
        run(IMPLEMENTATIONS[implementation], examples=150, steps=40)
