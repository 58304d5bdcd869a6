"""Tests of mmlion.optim.Lion: the math, the implementations against each other,
the settings and their errors, and (de)serialization."""
import copy
import math
import re
import warnings

import pytest
import torch

from helpers import FSDP2_UNSUPPORTED, exact_bf16_step
from mmlion.ops import lion_cpu
from mmlion.ops.loader import CPU
import mmlion.optim.lion as lion_module
from mmlion.optim import Lion
from mmlion.optim.lion import lion
from mmlion.optim.validation import RUN_OPTIONS

IMPLS = ['for-loop', 'foreach', 'fused']
needs_kernel = pytest.mark.skipif(not lion_cpu.available(),
                                  reason=f'fused kernel not built: {lion_cpu.load_error()}')


def impl_flags(impl):
    if impl == 'fused' and not lion_cpu.available():
        pytest.skip(f'fused kernel not built: {lion_cpu.load_error()}')
    return dict(foreach=impl == 'foreach', fused=impl == 'fused')


def make_params(dtype=torch.float64, seed=0, complex_=False):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (0,), (70_000,), (5,), (2, 3, 3, 3)]
    params = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in shapes]
    if complex_:
        params.append(torch.randn(6, generator=gen, dtype=torch.complex128).to(
            torch.complex64 if dtype != torch.float64 else torch.complex128))
    return [torch.nn.Parameter(p) for p in params]


def three_groups(params):
    return [{'params': params[:2], 'lr': 3e-3, 'weight_decay': 0.5},
            {'params': params[2:4]},
            {'params': params[4:], 'betas': (0.95, 0.98)}]


def run(params, steps=7, seed=1, none_grad_at=(3, 0), **kwargs):
    """Train ``params`` for ``steps`` steps on fixed random grads; return the optimizer."""
    optimizer = Lion(three_groups(params), **kwargs)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        for index, p in enumerate(params):
            grad = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
            p.grad = None if (step, index) == none_grad_at else grad
        optimizer.step()
    return optimizer


def clone(params):
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def step_in_lockstep(opt_a, params_a, opt_b, params_b, steps, gen):
    """Give both optimizers the same random grads for ``steps`` steps."""
    for _ in range(steps):
        for pa, pb in zip(params_a, params_b):
            g = torch.randn(pa.shape, generator=gen, dtype=pa.dtype)
            pa.grad, pb.grad = g, g.clone()
        opt_a.step()
        opt_b.step()


OPTION_SETS = [
    dict(),
    dict(weight_decay=0.1),
    dict(maximize=True, weight_decay=0.1),
    dict(cautious=True),
    dict(decoupled_weight_decay=True, weight_decay=1e-3),
]


@pytest.mark.parametrize('impl', ['foreach', 'fused'])
@pytest.mark.parametrize('options', OPTION_SETS, ids=str)
def test_implementations_match_for_loop_float64(impl, options):
    base = make_params()
    ref_params, test_params = clone(base), clone(base)
    ref = run(ref_params, lr=1e-3, foreach=False, fused=False, **options)
    test = run(test_params, lr=1e-3, **impl_flags(impl), **options)
    for p_ref, p_test in zip(ref_params, test_params):
        torch.testing.assert_close(p_test, p_ref, rtol=0, atol=1e-14)
        if p_ref in ref.state:
            torch.testing.assert_close(test.state[p_test]['exp_avg'],
                                       ref.state[p_ref]['exp_avg'], rtol=0, atol=1e-14)
    # the param whose grad was None at one step still moved at the others
    assert not torch.equal(ref_params[0], base[0])


@pytest.mark.parametrize('impl', ['foreach', 'fused'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float16])
def test_implementations_match_for_loop_low_precision(impl, dtype):
    base = make_params(dtype)
    lr = 1e-3
    ref_params, test_params = clone(base), clone(base)
    ref = run(ref_params, lr=lr, weight_decay=0.1, foreach=False, fused=False)
    test = run(test_params, lr=lr, weight_decay=0.1, **impl_flags(impl))
    eps = torch.finfo(dtype).eps
    for p_ref, p_test in zip(ref_params, test_params):
        # A sign may flip where the interpolation is within rounding of zero; then the
        # param is off by 2 lr per such step. Anything more is a bug.
        diff = (p_test.double() - p_ref.double()).abs()
        bound = 7 * 2 * lr + 4 * eps * p_ref.double().abs()
        assert bool((diff <= bound).all()), f'max diff {diff.max()}'
        if p_ref in ref.state:
            m_ref, m_test = ref.state[p_ref]['exp_avg'], test.state[p_test]['exp_avg']
            assert m_test.dtype == dtype
            torch.testing.assert_close(m_test.double(), m_ref.double(), rtol=4 * eps,
                                       atol=4 * eps)


FLOAT_DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize('impl', ['foreach', 'fused', 'default'])
@pytest.mark.parametrize('state_dtype', [None, *FLOAT_DTYPES], ids=str)
@pytest.mark.parametrize('param_dtype', FLOAT_DTYPES, ids=str)
def test_implementations_match_for_loop_for_every_dtype_pair(impl, param_dtype, state_dtype):
    """Every param dtype with every state dtype, each implementation against the
    for-loop: the momentum within rounding of its storage dtype, and the parameters
    equal but where a sign flipped within rounding of zero (a few elements, one
    step's 2 lr each). A momentum left at zero (the CPU kernel once did that for fp64
    params with bf16 state) moves it by ~1 and half the parameters by 2 lr."""
    base = make_params(param_dtype)
    lr = 1e-3
    ref_params, test_params = clone(base), clone(base)
    options = dict(lr=lr, weight_decay=0.1, state_dtype=state_dtype)
    flags = dict() if impl == 'default' else impl_flags(impl)
    ref = run(ref_params, foreach=False, fused=False, **options)
    test = run(test_params, **flags, **options)
    stored = state_dtype or param_dtype
    eps = max(torch.finfo(param_dtype).eps, torch.finfo(stored).eps)
    for p_ref, p_test in zip(ref_params, test_params):
        if p_ref not in ref.state:
            continue
        m_ref, m_test = ref.state[p_ref]['exp_avg'], test.state[p_test]['exp_avg']
        assert m_test.dtype == stored
        torch.testing.assert_close(m_test.double(), m_ref.double(), rtol=4 * eps, atol=4 * eps)
        off = (p_test.double() - p_ref.double()).abs() > 4 * eps * p_ref.double().abs() + 1e-12
        assert int(off.sum()) <= 0.01 * off.numel(), f'{int(off.sum())} of {off.numel()} differ'


def test_one_step_equals_formula():
    lr, (beta1, beta2), wd = 1e-2, (0.9, 0.99), 0.3
    p0 = torch.randn(100, dtype=torch.float64)
    m0 = torch.randn(100, dtype=torch.float64)
    g = torch.randn(100, dtype=torch.float64)
    for impl in IMPLS:
        if impl == 'fused' and not lion_cpu.available():
            continue
        p = torch.nn.Parameter(p0.clone())
        optimizer = Lion([p], lr=lr, betas=(beta1, beta2), weight_decay=wd, **impl_flags(impl))
        optimizer.state[p]['exp_avg'] = m0.clone()
        p.grad = g.clone()
        optimizer.step()
        expected_p = p0 * (1 - lr * wd) - lr * torch.sign(beta1 * m0 + (1 - beta1) * g)
        expected_m = beta2 * m0 + (1 - beta2) * g
        torch.testing.assert_close(p.detach(), expected_p, rtol=0, atol=1e-15, msg=impl)
        torch.testing.assert_close(optimizer.state[p]['exp_avg'], expected_m, rtol=0,
                                   atol=1e-15, msg=impl)


@pytest.mark.parametrize('impl', IMPLS)
def test_first_step_from_zero_state_is_sign_of_grad(impl):
    p = torch.nn.Parameter(torch.zeros(10, dtype=torch.float64))
    p.grad = torch.linspace(-1, 1, 10, dtype=torch.float64)
    Lion([p], lr=0.5, **impl_flags(impl)).step()
    torch.testing.assert_close(p.detach(), -0.5 * torch.sign(p.grad))


@pytest.mark.parametrize('impl', IMPLS)
def test_cautious_formula(impl):
    lr, beta1 = 0.1, 0.9
    m0 = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    g = torch.tensor([0.5, -20.0, -0.5, 3.0], dtype=torch.float64)
    p = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    optimizer = Lion([p], lr=lr, cautious=True, **impl_flags(impl))
    optimizer.state[p]['exp_avg'] = m0.clone()
    p.grad = g
    optimizer.step()
    update = torch.sign(beta1 * m0 + (1 - beta1) * g)  # [1, -1, -1, -1]
    mask = (update * g > 0).double()  # [1, 1, 1, 0]
    expected = -lr * update * mask / mask.mean()
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize('impl', IMPLS)
def test_decoupled_weight_decay_follows_schedule_not_lr(impl):
    p = torch.nn.Parameter(torch.ones(8, dtype=torch.float64))
    optimizer = Lion([p], lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True,
                     **impl_flags(impl))
    assert optimizer.param_groups[0]['initial_lr'] == 1e-2
    optimizer.param_groups[0]['lr'] = 5e-3  # a scheduler halved the lr
    p.grad = torch.zeros(8, dtype=torch.float64)
    optimizer.step()
    # decay = wd * lr / initial_lr = 0.05; the sign of a zero interpolation is 0
    torch.testing.assert_close(p.detach(), torch.full((8,), 0.95, dtype=torch.float64))


@pytest.mark.parametrize('impl', IMPLS)
def test_tensor_lr_equals_float_lr(impl):
    base = make_params()
    a, b = clone(base), clone(base)
    opt_a = run(a, lr=2e-3, weight_decay=0.1, **impl_flags(impl))
    opt_b = run(b, lr=torch.tensor(2e-3, dtype=torch.float64), weight_decay=0.1,
                **impl_flags(impl))
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pb, pa, rtol=0, atol=1e-15)
    assert isinstance(opt_b.param_groups[1]['lr'], torch.Tensor)
    assert opt_a.param_groups[1]['lr'] == 2e-3


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('shape', [(), (1,), (1, 1)])
@pytest.mark.parametrize('decoupled', [False, True])
def test_tensor_lr_of_every_one_element_shape(impl, shape, decoupled):
    """torch's optimizers take a one-element Tensor lr of any shape; so does each path."""
    base = make_params()
    a, b = clone(base), clone(base)
    run(a, lr=2e-3, weight_decay=0.1, decoupled_weight_decay=decoupled, **impl_flags(impl))
    run(b, lr=torch.full(shape, 2e-3, dtype=torch.float64), weight_decay=0.1,
        decoupled_weight_decay=decoupled, **impl_flags(impl))
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pb, pa, rtol=0, atol=1e-15)
        assert pb.shape == pa.shape


def test_deepcopy_and_unpickle_then_rebuild_from_defaults():
    """torch's __setstate__ adds ``differentiable`` to ``defaults``; the rebuild that
    MMEngine's strategies do must still take every key."""
    import pickle
    params = make_params(torch.float32)
    optimizer = run(params, steps=1, lr=1e-3, weight_decay=0.1)
    for copy_ in (copy.deepcopy(optimizer), pickle.loads(pickle.dumps(optimizer))):
        assert copy_.defaults['differentiable'] is False
        rebuilt = type(copy_)(params, **copy_.defaults)
        assert rebuilt.defaults == optimizer.defaults


def test_numpy_scalars_are_numbers():
    """Configs built in code often hold numpy scalars; torch's AdamW takes them."""
    import numpy as np
    params = make_params(torch.float32)
    optimizer = Lion(params, lr=np.float32(1e-4), weight_decay=np.float32(0.1),
                     betas=(np.float64(0.9), np.float32(0.99)))
    group = optimizer.param_groups[0]
    assert type(group['lr']) is float and group['lr'] == pytest.approx(1e-4)
    assert type(group['weight_decay']) is float and type(group['betas'][1]) is float
    assert Lion(params, weight_decay=np.int64(0)).param_groups[0]['weight_decay'] == 0
    with pytest.raises(ValueError, match='Invalid learning rate: .* not a number'):
        Lion(params, lr=np.bool_(True))


def test_every_option_survives_a_rebuild_from_defaults():
    """MMEngine's FSDPStrategy rebuilds optimizers as type(opt)(params, **opt.defaults)."""
    options = dict(lr=3e-4, betas=(0.95, 0.98), weight_decay=0.5, maximize=True,
                   cautious=True, decoupled_weight_decay=True, state_dtype=torch.bfloat16,
                   foreach=True, fused=False, skip_nonfinite=True, max_consecutive_skips=4,
                   differentiable=False)
    params = make_params(torch.float32)
    optimizer = Lion(params, **options)
    import inspect
    signature = inspect.signature(Lion).parameters
    assert set(options) == {k for k in signature if k not in ('params', 'unknown')}
    for copy_ in (type(optimizer)(params, **optimizer.defaults), copy.deepcopy(optimizer)):
        for key, value in options.items():
            assert copy_.defaults[key] == value, key
            assert copy_.param_groups[0][key] == value, key
    # load_state_dict: the hyperparameters come from the state dict (with a warning that
    # lists them), how the run steps stays as the loading optimizer was built
    restored = Lion(params, skip_nonfinite=False, foreach=False)
    with pytest.warns(UserWarning, match=r'(?s)lr 0\.0003 in the checkpoint.*betas'):
        restored.load_state_dict(optimizer.state_dict())
    for key, value in options.items():
        expected = restored.defaults[key] if key in RUN_OPTIONS else value
        assert restored.param_groups[0][key] == expected, key


@needs_kernel
@pytest.mark.parametrize('param_dtype', [torch.float32, torch.bfloat16])
def test_fused_bf16_state_is_the_exact_formula(param_dtype):
    """fp32 arithmetic, each result rounded once to its storage dtype, no fused
    multiply-add: computed here elementwise, bit for bit."""
    lr, b1, b2, decay = 1e-2, 0.9, 0.99, 0.999
    # several chunks and a vector tail
    (p0, g, m0), (expected_p, expected_m) = exact_bf16_step(70_001, param_dtype, lr, b1, b2,
                                                            decay)
    p, m = p0.clone(), m0.clone()
    assert CPU.get().fused_lion_([p], [g], [m], lr, b1, b2, decay, False, False)
    assert torch.equal(p[~p.isnan()], expected_p[~expected_p.isnan()])
    assert torch.equal(m.isnan(), expected_m.isnan()) and m.isnan().sum() == 1
    assert torch.equal(m[~m.isnan()], expected_m[~expected_m.isnan()])


@needs_kernel
def test_kernels_hand_back_what_they_cannot_take():
    """Meta tensors and tensor subclasses go back to Python, untouched, never into C++."""
    kernel, finite = CPU.get().fused_lion_, CPU.get().all_finite
    meta = [torch.zeros(4, device='meta')]
    assert kernel(meta, meta, meta, 1e-3, 0.9, 0.99, 1.0, False, False) is False
    assert finite(meta) is None

    class Wrapped(torch.Tensor):  # a Python-dispatch wrapper subclass, like DTensor
        @staticmethod
        def __new__(cls, inner):
            return torch.Tensor._make_wrapper_subclass(cls, inner.shape, dtype=inner.dtype)

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            raise RuntimeError(f'{func} reached the wrapper')

    wrapped = [Wrapped(torch.zeros(4))]
    assert kernel(wrapped, wrapped, wrapped, 1e-3, 0.9, 0.99, 1.0, False, False) is False
    assert finite(wrapped) is None
    assert not lion_cpu.takes(wrapped) and not lion_cpu.takes(meta)
    with pytest.raises(RuntimeError, match='for plain CPU tensors and'):
        lion(meta, meta, meta, fused=True, lr=1e-3, beta1=0.9, beta2=0.99, weight_decay=0.0)


def test_default_path_never_reads_a_device_lr_on_the_host():
    """Off the CPU the default dispatch must not read lr (on CUDA that is a sync per
    step). Meta tensors stand in for a device here: reading one raises."""
    meta = [torch.zeros(4, device='meta')]
    lion(meta, [torch.zeros(4, device='meta')], [torch.zeros(4, device='meta')],
         lr=torch.tensor(1e-3, device='meta'), beta1=0.9, beta2=0.99, weight_decay=0.1)
    with pytest.raises(RuntimeError):  # the control: reading it does raise
        float(torch.tensor(1e-3, device='meta'))


needs_fsdp2 = pytest.mark.skipif(bool(FSDP2_UNSUPPORTED), reason=str(FSDP2_UNSUPPORTED))


@needs_fsdp2
@pytest.mark.parametrize('options', [dict(), dict(skip_nonfinite=True), dict(fused=False)])
def test_dtensor_params_never_crash(options, single_process_group):
    """FSDP2's parameters are DTensors: Lion takes them (the Python paths), no crash,
    the same result as plain tensors."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    mesh = init_device_mesh('cpu', (1,))
    gen = torch.Generator().manual_seed(0)
    plain = torch.nn.Parameter(torch.randn(6, 4, generator=gen))
    grad = torch.randn(6, 4, generator=gen)
    sharded = torch.nn.Parameter(distribute_tensor(plain.detach().clone(), mesh, [Shard(0)]))
    sharded.grad = distribute_tensor(grad.clone(), mesh, [Shard(0)])
    plain.grad = grad.clone()
    for p in (plain, sharded):
        Lion([p], lr=1e-2, weight_decay=0.1, **options).step()
    torch.testing.assert_close(sharded.detach().full_tensor(), plain.detach())


@needs_fsdp2
def test_dtensor_grad_laid_out_otherwise_is_redistributed(single_process_group):
    """A Replicate gradient of a Shard(0) parameter (a parameter used outside its
    FSDP2 module's forward) is brought to the parameter's placements, then stepped."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor
    mesh = init_device_mesh('cpu', (1,))
    gen = torch.Generator().manual_seed(0)
    plain = torch.nn.Parameter(torch.randn(6, 4, generator=gen))
    grad = torch.randn(6, 4, generator=gen)
    sharded = torch.nn.Parameter(distribute_tensor(plain.detach().clone(), mesh, [Shard(0)]))
    sharded.grad = distribute_tensor(grad.clone(), mesh, [Replicate()])
    plain.grad = grad.clone()
    for p in (plain, sharded):
        Lion([p], lr=1e-2, weight_decay=0.1).step()
    torch.testing.assert_close(sharded.detach().full_tensor(), plain.detach())


@pytest.mark.skipif(not FSDP2_UNSUPPORTED, reason='this torch supports DTensor parameters')
def test_dtensor_params_on_an_older_torch_are_refused_at_construction(single_process_group):
    """Before torch 2.6 DTensor is private (``torch.distributed._tensor``) and mmlion's
    DTensor path is untested: Lion says so at construction, naming both versions."""
    from torch.distributed._tensor import DeviceMesh, Shard, distribute_tensor
    mesh = DeviceMesh('cpu', [0])
    sharded = torch.nn.Parameter(distribute_tensor(torch.randn(6, 4), mesh, [Shard(0)]))
    with pytest.raises(RuntimeError, match=r'DTensor parameters .* needs torch >= 2\.6; '
                                           r'torch 2\.\d+\.\d+ is installed'):
        Lion([sharded], lr=1e-2)


@pytest.mark.parametrize('impl', IMPLS)
def test_complex_equals_view_as_real_twin(impl):
    gen = torch.Generator().manual_seed(0)
    z = torch.nn.Parameter(torch.randn(50, generator=gen, dtype=torch.complex128))
    r = torch.nn.Parameter(torch.view_as_real(z.detach()).clone())
    opt_z = Lion([z], lr=1e-2, weight_decay=0.1, **impl_flags(impl))
    opt_r = Lion([r], lr=1e-2, weight_decay=0.1, **impl_flags(impl))
    for _ in range(5):
        g = torch.randn(50, generator=gen, dtype=torch.complex128)
        z.grad, r.grad = g, torch.view_as_real(g).clone()
        opt_z.step()
        opt_r.step()
    torch.testing.assert_close(torch.view_as_real(z.detach()), r.detach(), rtol=0, atol=0)
    assert opt_z.state[z]['exp_avg'].is_complex()
    torch.testing.assert_close(torch.view_as_real(opt_z.state[z]['exp_avg']),
                               opt_r.state[r]['exp_avg'], rtol=0, atol=0)


@pytest.mark.parametrize('impl', IMPLS)
def test_maximize_climbs(impl):
    # f(x) = -|x - 3|^2 has its maximum at 3
    x = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    optimizer = Lion([x], lr=0.05, maximize=True, **impl_flags(impl))
    values = []
    for _ in range(50):
        optimizer.zero_grad()
        f = -((x - 3) ** 2).sum()
        f.backward()
        optimizer.step()
        values.append(f.item())
    # each step moves every coordinate by lr towards 3
    assert all(b > a for a, b in zip(values, values[1:]))
    torch.testing.assert_close(x.detach(), torch.full((4,), 2.5, dtype=torch.float64))


@pytest.mark.parametrize('impl', IMPLS)
def test_minimizes_quadratic(impl):
    x = torch.nn.Parameter(torch.full((4,), 5.0))
    optimizer = Lion([x], lr=0.05, **impl_flags(impl))
    for _ in range(200):
        optimizer.zero_grad()
        (x ** 2).sum().backward()
        optimizer.step()
    assert x.abs().max() < 0.2


@pytest.mark.parametrize('impl', IMPLS)
def test_state_dtype_bfloat16(impl):
    base = make_params(torch.float32)
    ref_params, test_params = clone(base), clone(base)
    ref = run(ref_params, lr=1e-3, foreach=False, fused=False)
    test = run(test_params, lr=1e-3, state_dtype='bfloat16', **impl_flags(impl))
    assert test.param_groups[0]['state_dtype'] is torch.bfloat16
    for p_ref, p_test in zip(ref_params, test_params):
        if p_ref not in ref.state:
            continue
        m = test.state[p_test]['exp_avg']
        assert m.dtype == torch.bfloat16 and m.element_size() == 2
        torch.testing.assert_close(m.float(), ref.state[p_ref]['exp_avg'], rtol=2e-2,
                                   atol=1e-2)


@pytest.mark.parametrize('impl', IMPLS)
def test_state_dtype_survives_state_dict_round_trip(impl):
    params = make_params(torch.float32)
    optimizer = run(params, lr=1e-3, state_dtype=torch.bfloat16, **impl_flags(impl))
    fresh = Lion(three_groups(params), lr=1e-3, state_dtype=torch.bfloat16,
                 **impl_flags(impl))
    fresh.load_state_dict(optimizer.state_dict())  # torch casts state to the param dtype
    for p in params:
        p.grad = torch.ones_like(p)
    fresh.step()
    assert all(s['exp_avg'].dtype == torch.bfloat16 for s in fresh.state.values())


@pytest.mark.parametrize('impl', IMPLS)
def test_state_dict_round_trip_in_lockstep(impl):
    params_a = make_params(torch.float32)
    opt_a = run(params_a, steps=3, lr=1e-3, weight_decay=0.1, **impl_flags(impl))
    params_b = clone(params_a)
    opt_b = Lion(three_groups(params_b), lr=1e-3, weight_decay=0.1, **impl_flags(impl))
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    step_in_lockstep(opt_a, params_a, opt_b, params_b, 4, torch.Generator().manual_seed(7))
    assert len(opt_a.state) == len(opt_b.state) > 0
    for pa, pb in zip(params_a, params_b):
        assert torch.equal(pa, pb)
        assert (pa in opt_a.state) == (pb in opt_b.state)
        if pa in opt_a.state:  # a parameter that never had a gradient has no state
            assert torch.equal(opt_a.state[pa]['exp_avg'], opt_b.state[pb]['exp_avg'])


def test_deepcopy_then_step():
    params = make_params(torch.float32)
    optimizer = run(params, steps=2, lr=1e-3, cautious=True, state_dtype=torch.bfloat16)
    twin = copy.deepcopy(optimizer)
    for key, value in optimizer.defaults.items():
        assert twin.defaults[key] == value, key
    twin_params = [p for g in twin.param_groups for p in g['params']]
    for p in twin_params:
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in twin_params]
    twin.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, twin_params) if a.numel())
    # the original is untouched by the copy's step
    assert all(p is not q for p, q in zip(params, twin_params))


def test_loads_state_dict_without_newer_flags():
    params = make_params(torch.float32)
    optimizer = run(params, steps=2, lr=1e-3)
    old = optimizer.state_dict()
    for group in old['param_groups']:
        for key in ('maximize', 'cautious', 'decoupled_weight_decay', 'state_dtype',
                    'foreach', 'fused'):
            group.pop(key)
    fresh = Lion(three_groups(params), lr=1e-3)
    fresh.load_state_dict(old)
    for group in fresh.param_groups:
        assert group['maximize'] is False and group['state_dtype'] is None
    for p in params:
        p.grad = torch.ones_like(p)
    fresh.step()
    # an old pickle of the optimizer object itself
    state = optimizer.__getstate__()
    for group in state['param_groups']:
        group.pop('cautious')
    revived = Lion.__new__(Lion)
    revived.__setstate__(state)
    assert all(g['cautious'] is False for g in revived.param_groups)


def test_loads_lion_pytorch_style_state_dict():
    """lion-pytorch and timm keep the momentum as ``state['exp_avg']`` and the same
    group keys (lr, betas, weight_decay); their state dicts load and step."""
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    foreign = {
        'state': {0: {'exp_avg': torch.full((4, 3), 0.5)}, 1: {'exp_avg': torch.zeros(3)}},
        'param_groups': [{'lr': 3e-4, 'betas': (0.9, 0.99), 'weight_decay': 0.0,
                          'params': [0, 1]}],
    }
    optimizer = Lion(params)
    optimizer.load_state_dict(foreign)
    assert optimizer.param_groups[0]['lr'] == 3e-4
    before = params[0].detach().clone()
    params[0].grad = torch.zeros(4, 3)
    params[1].grad = torch.zeros(3)
    optimizer.step()
    # sign(0.9 * 0.5 + 0.1 * 0) = 1: the loaded momentum drove the step
    torch.testing.assert_close(params[0].detach(), before - 3e-4)


def test_equal_groups_are_batched_into_one_call(monkeypatch):
    calls = []
    real = lion_module.choose

    def spy(params, grads, exp_avgs, foreach, fused):
        chosen = real(params, grads, exp_avgs, foreach, fused)

        def update(params, *args, **kwargs):
            calls.append(len(params))
            return chosen.update(params, *args, **kwargs)

        return chosen._replace(update=update)

    monkeypatch.setattr(lion_module, 'choose', spy)
    params = [torch.nn.Parameter(torch.randn(3)) for _ in range(6)]
    groups = [{'params': [p]} for p in params[:4]]  # what paramwise_cfg makes
    groups += [{'params': [p], 'weight_decay': 0.0} for p in params[4:]]
    optimizer = Lion(groups, lr=1e-3, weight_decay=0.1)
    for p in params:
        p.grad = torch.randn(3)
    optimizer.step()
    assert sorted(calls) == [2, 4]


def test_functional_matches_class():
    base = make_params()
    a, b = clone(base)[2:4], clone(base)[2:4]
    optimizer = Lion(a, lr=1e-3, weight_decay=0.2, betas=(0.8, 0.9))
    grads = [torch.randn_like(p) for p in a]
    for p, g in zip(a, grads):
        p.grad = g
    optimizer.step()
    ms = [torch.zeros_like(p) for p in b]
    with torch.no_grad():
        lion([p for p in b], grads, ms, lr=1e-3, beta1=0.8, beta2=0.9, weight_decay=0.2)
    for pa, pb in zip(a, b):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_unbuilt_kernel_falls_back_with_one_message(monkeypatch):
    monkeypatch.setattr(CPU, '_loaded', True)
    monkeypatch.setattr(CPU, 'module', None)
    monkeypatch.setattr(CPU, 'error', 'mmlion.ops._C could not be imported: test')
    monkeypatch.setattr(lion_cpu, '_warned', False)
    base = make_params()
    a, b = clone(base), clone(base)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        run(a, lr=1e-3)
    messages = [str(w.message) for w in caught if 'fused Lion kernel' in str(w.message)]
    assert len(messages) == 1 and 'test' in messages[0]
    run(b, lr=1e-3, foreach=False, fused=False)
    for pa, pb in zip(a, b):
        assert torch.equal(pa, pb)
    with pytest.raises(RuntimeError, match='fused=True needs the compiled mmlion kernel'):
        run(clone(base), lr=1e-3, fused=True)


def test_sparse_grad_raises_and_leaves_params():
    p = torch.nn.Parameter(torch.ones(4))
    optimizer = Lion([p])
    p.grad = torch.sparse_coo_tensor([[0]], [1.0], (4,))
    with pytest.raises(RuntimeError, match='sparse gradients'):
        optimizer.step()
    assert torch.equal(p.detach(), torch.ones(4))


# The rest of the bad settings are rows of the bad-input table
# (tests/test_optim/test_optim_bad_input.py), each with its message and nothing lost.
@pytest.mark.parametrize('kwargs, pattern', [
    (dict(betas=(0.9, '0.99')), 'Invalid beta parameter at index 1'),
    (dict(weight_decay=None), 'Invalid weight_decay value: weight_decay=None'),
    (dict(cautious=1), 'Invalid cautious: cautious=1'),
])
def test_bad_hyperparameters_raise(kwargs, pattern):
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match=pattern):
        Lion([p], **kwargs)
    assert torch.equal(p.detach(), torch.ones(3))


def test_bad_group_value_raises_and_keeps_optimizer():
    p, q = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    optimizer = Lion([p], lr=1e-3)
    with pytest.raises(ValueError, match=re.escape('lr=-1.0')):
        optimizer.add_param_group({'params': [q], 'lr': -1.0})
    assert len(optimizer.param_groups) == 1


@needs_kernel
def test_fused_kernel_checks_its_inputs():
    kernel = CPU.get().fused_lion_
    p, g, m = torch.zeros(4), torch.zeros(4), torch.zeros(5)
    with pytest.raises(RuntimeError, match='different sizes'):
        kernel([p], [g], [m], 1e-3, 0.9, 0.99, 1.0, False, False)
    with pytest.raises(RuntimeError, match='same length'):
        kernel([p], [g], [], 1e-3, 0.9, 0.99, 1.0, False, False)
    with pytest.raises(RuntimeError, match='share one dtype'):
        kernel([p], [g.double()], [p.clone()], 1e-3, 0.9, 0.99, 1.0, False, False)
    assert torch.equal(p, torch.zeros(4))


@needs_kernel
def test_fused_handles_non_contiguous_and_large_tensors():
    gen = torch.Generator().manual_seed(0)
    big = torch.randn(3 * (1 << 15) + 17, generator=gen)  # several chunks and a tail
    t = torch.randn(40, 30, generator=gen).t()  # not contiguous
    params = [torch.nn.Parameter(big.clone()), torch.nn.Parameter(t.clone())]
    twins = [torch.nn.Parameter(big.clone()), torch.nn.Parameter(t.clone())]
    assert not params[1].is_contiguous()
    a = Lion(params, lr=1e-3, fused=True)
    b = Lion(twins, lr=1e-3, foreach=False, fused=False)
    step_in_lockstep(a, params, b, twins, 3, gen)
    for p, q in zip(params, twins):
        assert (p - q).abs().max() <= 1e-6


def test_nan_gradient_poisons_momentum_in_every_implementation():
    """torch.sign(NaN) is 0 on the CPU, so a NaN gradient freezes its element for
    good: the momentum turns NaN and every later sign is 0. All implementations
    agree on this (a guard against it is a separate option)."""
    for impl in IMPLS:
        if impl == 'fused' and not lion_cpu.available():
            continue
        p = torch.nn.Parameter(torch.ones(3))
        optimizer = Lion([p], lr=0.1, **impl_flags(impl))
        p.grad = torch.tensor([1.0, float('nan'), 1.0])
        optimizer.step()
        assert p[1].item() == torch.sign(torch.tensor(float('nan'))).item() * -0.1 + 1.0
        assert p[0].item() == pytest.approx(0.9), impl
        assert math.isnan(optimizer.state[p]['exp_avg'][1].item()), impl


def test_betas_as_a_list_step():
    """betas arrive as a list from configs and from state dicts that went through
    JSON or torch.distributed.checkpoint; the step must take them."""
    p = torch.nn.Parameter(torch.randn(3))
    p.grad = torch.randn(3)
    optimizer = Lion([p], betas=[0.9, 0.99])
    optimizer.step()
    state = optimizer.state_dict()
    state['param_groups'][0]['betas'] = list(state['param_groups'][0]['betas'])
    optimizer.load_state_dict(state)
    optimizer.step()
    assert optimizer.state[p]['exp_avg'].abs().sum() > 0
