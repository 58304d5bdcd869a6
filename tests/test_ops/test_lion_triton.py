"""The fused GPU path (Triton): the same step as the for-loop for every option and
dtype, the GradScaler's contract, the guard on the device, and what it refuses.

Without a GPU these run the kernels on CPU tensors in Triton's interpreter (see the
``triton_device`` fixture); with one, on CUDA.
"""
import copy

import pytest
import torch
from helpers import exact_bf16_step, python_tool

from mmlion.ops import lion_triton
from mmlion.ops.loader import TRITON
from mmlion.optim import Lion
from mmlion.optim.functional import single_tensor_lion
from mmlion.optim.lion import lion

# Small enough for the interpreter, large enough for full and tail blocks.
SHAPES = [(3, 4), (0,), (2 * lion_triton.BLOCK + 5,), (5,), (2, 3, 3, 3)]
HYPER = dict(lr=1e-2, beta1=0.9, beta2=0.99, weight_decay=0.1, initial_lr=None,
             maximize=False, cautious=False)
# fp32 arithmetic in both, but the for-loop rounds the momentum's product before its
# sum where the kernel may not: the last bit of fp32 may differ.
FP32 = dict(rtol=1e-6, atol=1e-7)


def tensors(device, dtype=torch.float32, state_dtype=None, seed=0, shapes=SHAPES):
    gen = torch.Generator().manual_seed(seed)

    def randn(shape, dt):
        return torch.randn(shape, generator=gen).to(device=device, dtype=dt)
    params = [randn(s, dtype) for s in shapes]
    grads = [randn(s, dtype) for s in shapes]
    exp_avgs = [randn(s, state_dtype or dtype) for s in shapes]
    return params, grads, exp_avgs


def cloned(lists):
    return [[t.clone() for t in ts] for ts in lists]


def reference_step(lists, **hyper):
    """The for-loop on a float64 copy (the exact step), cast back to each dtype."""
    exact = [[t.double() for t in ts] for ts in lists]
    single_tensor_lion(*exact, **hyper)
    return [[e.to(t.dtype) for e, t in zip(es, ts)] for es, ts in zip(exact, lists)]


OPTIONS = [dict(), dict(maximize=True), dict(cautious=True), dict(weight_decay=0.0),
           dict(initial_lr=2e-2), dict(lr='tensor'), dict(lr='tensor', initial_lr='tensor'),
           dict(lr='tensor(1,)', cautious=True, maximize=True)]


def hyper_for(options, device):
    hyper = dict(HYPER, **options)
    for key in ('lr', 'initial_lr'):
        if hyper[key] == 'tensor':
            hyper[key] = torch.tensor(HYPER['lr'] * (2 if key == 'initial_lr' else 1),
                                      device=device)
        elif hyper[key] == 'tensor(1,)':
            hyper[key] = torch.tensor([HYPER['lr']], device=device)
    return hyper


@pytest.mark.parametrize('options', OPTIONS, ids=str)
def test_fp32_matches_the_for_loop(triton_device, options):
    hyper = hyper_for(options, triton_device)
    fused = tensors(triton_device)
    loop = cloned(fused)
    for step in range(3):
        lion(*fused, fused=True, **hyper)
        single_tensor_lion(*loop, **hyper)
    for a, b in zip(fused[0] + fused[2], loop[0] + loop[2]):
        torch.testing.assert_close(a, b, **FP32)


@pytest.mark.parametrize('dtype, state_dtype', [
    (torch.bfloat16, None), (torch.float16, None), (torch.float32, torch.bfloat16),
    (torch.bfloat16, torch.float32), (torch.float16, torch.bfloat16)])
@pytest.mark.parametrize('options', [dict(), dict(cautious=True, maximize=True)], ids=str)
def test_low_precision_is_fp32_arithmetic_rounded_once(triton_device, dtype, state_dtype,
                                                       options):
    lists = tensors(triton_device, dtype, state_dtype)
    expected = reference_step(lists, **dict(HYPER, **options))
    lion(*lists, fused=True, **dict(HYPER, **options))
    for actual, wanted in zip(lists[0] + lists[2], expected[0] + expected[2]):
        assert actual.dtype == wanted.dtype
        if actual.dtype == torch.float32:
            torch.testing.assert_close(actual, wanted, **FP32)
            continue
        # fp32 arithmetic rounded once to bf16/fp16: within a unit in the last place
        # (eps * |x| is one or two of them) of the exact value.
        ulps = torch.finfo(actual.dtype).eps * wanted.float().abs()
        assert ((actual.float() - wanted.float()).abs() <= ulps).all()


@pytest.mark.parametrize('param_dtype', [torch.float32, torch.bfloat16])
def test_bf16_is_rounded_to_nearest_even_as_torch_does(triton_device, param_dtype):
    """Every bf16 store is torch's ``.to(torch.bfloat16)`` of the fp32 result, bit for
    bit (NaN kept NaN): the kernel rounds in integer bit operations, so Triton's
    interpreter (whose plain cast truncates) and a GPU agree with the C++ kernel."""
    lr, b1, b2, wd = 1e-2, 0.9, 0.99, 0.1
    (p0, g, m0), (expected_p, expected_m) = exact_bf16_step(
        3 * lion_triton.BLOCK + 7, param_dtype, lr, b1, b2, 1 - lr * wd)  # a masked tail
    p, m = p0.to(triton_device), m0.to(triton_device)
    lion([p], [g.to(triton_device)], [m], fused=True, lr=lr, beta1=b1, beta2=b2,
         weight_decay=wd)
    p, m = p.cpu(), m.cpu()
    assert torch.equal(m.isnan(), expected_m.isnan()) and int(m.isnan().sum()) == 1
    assert torch.equal(m[~m.isnan()], expected_m[~expected_m.isnan()])
    if param_dtype == torch.bfloat16:
        assert torch.equal(p, expected_p)


def test_sign_of_zero_is_zero(triton_device):
    """Where the interpolation is exactly zero the parameter only decays (the
    reference steps by 0; DeepSpeed's FusedLion steps by +lr)."""
    p = torch.ones(8, device=triton_device)
    g = torch.zeros(8, device=triton_device)
    m = torch.zeros(8, device=triton_device)
    lion([p], [g], [m], fused=True, **dict(HYPER, weight_decay=0.0))
    assert torch.equal(p, torch.ones(8, device=triton_device))


def test_many_tensors_and_empty_ones_in_one_launch(triton_device, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    sizes = torch.randint(0, 4, (300,), generator=gen).tolist() + [0, 0]
    lists = tensors(triton_device, shapes=[(n,) for n in sizes])
    loop = cloned(lists)
    launches = []
    kernel = TRITON.get().lion_kernel

    class Counting:
        def __getitem__(self, grid):
            launches.append(grid)
            return kernel[grid]
    monkeypatch.setattr(TRITON.get(), 'lion_kernel', Counting())
    lion(*lists, fused=True, **HYPER)
    single_tensor_lion(*loop, **HYPER)
    blocks = sum(-(-n // lion_triton.BLOCK) for n in sizes)
    assert launches == [(-(-blocks // lion_triton.BLOCKS_PER_PROGRAM),)]
    for a, b in zip(lists[0] + lists[2], loop[0] + loop[2]):
        torch.testing.assert_close(a, b, **FP32)


def test_a_program_walks_its_blocks_across_tensors(triton_device):
    """Each program steps several blocks: tensors of several blocks, of a partial last
    block and empty ones, in any order, all stepped once and only once."""
    block = lion_triton.BLOCK
    sizes = [2 * block + 5, 0, 3, block, 0, 0, 3 * block + 1, 1, block - 1, 0]
    lists = tensors(triton_device, shapes=[(n,) for n in sizes])
    loop = cloned(lists)
    lion(*lists, fused=True, **HYPER)
    single_tensor_lion(*loop, **HYPER)
    for a, b in zip(lists[0] + lists[2], loop[0] + loop[2]):
        torch.testing.assert_close(a, b, **FP32)


def test_complex_params_step_as_their_real_view(triton_device):
    gen = torch.Generator().manual_seed(3)
    z = [torch.randn(5, generator=gen, dtype=torch.complex64).to(triton_device)
         for _ in range(3)]
    twin = [torch.view_as_real(t).clone() for t in z]
    lion([z[0]], [z[1]], [z[2]], fused=True, **HYPER)
    single_tensor_lion([twin[0]], [twin[1]], [twin[2]], **HYPER)
    torch.testing.assert_close(torch.view_as_real(z[0]), twin[0], **FP32)
    torch.testing.assert_close(torch.view_as_real(z[2]), twin[2], **FP32)


def test_layouts_that_differ_are_written_back(triton_device):
    """A transposed param with a contiguous grad: worked on in copies, written back."""
    p = torch.randn(6, 4, device=triton_device).t()
    g = torch.randn(4, 6, device=triton_device)
    m = torch.randn(4, 6, device=triton_device)
    loop = cloned([[p], [g], [m]])
    lion([p], [g], [m], fused=True, **HYPER)
    single_tensor_lion(*loop, **HYPER)
    torch.testing.assert_close(p, loop[0][0], **FP32)
    torch.testing.assert_close(m, loop[2][0], **FP32)


def test_found_inf_leaves_everything_bitwise_unchanged(triton_device):
    lists = tensors(triton_device)
    before = cloned(lists)
    found_inf = torch.ones((), device=triton_device)
    lion(*lists, fused=True, **dict(HYPER, cautious=True), found_inf=found_inf,
         grad_scale=torch.full((), 1024.0, device=triton_device))
    for a, b in zip(sum(lists, []), sum(before, [])):
        assert torch.equal(a, b)


@pytest.mark.parametrize('maximize', [False, True])
def test_grad_scale_divides_the_gradients(triton_device, maximize):
    lists = tensors(triton_device)
    scale = 2.0 ** 12
    scaled = cloned(lists)
    scaled[1] = [g * scale for g in scaled[1]]
    hyper = dict(HYPER, cautious=True, maximize=maximize)
    lion(*scaled, fused=True, **hyper, grad_scale=torch.full((), scale, device=triton_device),
         found_inf=torch.zeros((), device=triton_device))
    single_tensor_lion(*lists, **hyper)
    for a, b in zip(scaled[0] + scaled[2], lists[0] + lists[2]):
        torch.testing.assert_close(a, b, **FP32)
    # the gradients are left unscaled, as torch's fused AdamW leaves them (a power of
    # two: exact)
    for a, b in zip(scaled[1], lists[1]):
        assert torch.equal(a, b)


def model_and_twin(device):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 2)).to(device)
    return model, copy.deepcopy(model)


def test_grad_scaler_hands_unscaling_and_skipping_to_the_step(triton_device):
    """torch's GradScaler, as with fused AdamW: no unscale_ pass of its own, a skip on
    overflow, the same parameters as unscaled training with the for-loop."""
    model, twin = model_and_twin(triton_device)
    fused = Lion(model.parameters(), lr=1e-2, fused=True)
    loop = Lion(twin.parameters(), lr=1e-2, foreach=False)
    assert fused._step_supports_amp_scaling and not loop._step_supports_amp_scaling
    scaler = torch.amp.GradScaler(triton_device.type, init_scale=2.0 ** 10)
    gen = torch.Generator().manual_seed(1)
    for step in range(4):
        x = torch.randn(4, 8, generator=gen).to(triton_device)
        fused.zero_grad()
        scaler.scale(model(x).sum()).backward()
        if step == 2:  # an overflow: the step is skipped and the scale halves
            model[0].weight.grad[0, 0] = float('inf')
        before = [p.clone() for p in model.parameters()]
        scaler.step(fused)
        scaler.update()
        if step == 2:
            assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
            assert scaler.get_scale() == 2.0 ** 9
            continue
        loop.zero_grad()
        twin(x).sum().backward()
        loop.step()
        # what follows the step (logging a grad norm, say) sees unscaled gradients
        for a, b in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(a.grad, b.grad, **FP32)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, **FP32)


def test_grad_scaler_after_unscale_for_clipping(triton_device):
    """MMEngine's AmpOptimWrapper with clip_grad unscales first: the step then gets
    found_inf but no grad_scale."""
    model, twin = model_and_twin(triton_device)
    fused = Lion(model.parameters(), lr=1e-2, fused=True)
    loop = Lion(twin.parameters(), lr=1e-2, foreach=False)
    scaler = torch.amp.GradScaler(triton_device.type, init_scale=2.0 ** 10)
    x = torch.randn(4, 8).to(triton_device)
    scaler.scale(model(x).sum()).backward()
    scaler.unscale_(fused)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    scaler.step(fused)
    twin(x).sum().backward()
    torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5)
    loop.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, **FP32)


def test_guard_skips_on_the_device_and_enforces_the_limit(triton_device):
    model, twin = model_and_twin(triton_device)
    fused = Lion(model.parameters(), lr=1e-2, fused=True, skip_nonfinite=True,
                 max_consecutive_skips=3)
    loop = Lion(twin.parameters(), lr=1e-2, foreach=False)
    x = torch.randn(4, 8).to(triton_device)
    for optimizer, net in ((fused, model), (loop, twin)):
        net(x).sum().backward()
        optimizer.step()
    before = [p.clone() for p in model.parameters()]
    state_before = [fused.state[p]['exp_avg'].clone() for p in model.parameters()]
    raised = None
    for step in range(6):
        fused.zero_grad()
        model(x).sum().backward()
        model[2].bias.grad[0] = float('nan')
        try:
            fused.step()
        except FloatingPointError as error:
            raised = (step, str(error))
            break
    assert raised is not None and 'max_consecutive_skips=3' in raised[1]
    # It may see the run a step or two late (on a GPU), never early.
    assert 2 <= raised[0] <= 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(torch.equal(fused.state[p]['exp_avg'], m)
               for p, m in zip(model.parameters(), state_before))
    assert fused.state_dict()['nonfinite']['skipped'] == raised[0] + 1
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, **FP32)


def test_guard_does_not_count_grad_scaler_overflows(triton_device):
    model, _ = model_and_twin(triton_device)
    fused = Lion(model.parameters(), lr=1e-2, fused=True, skip_nonfinite=True)
    scaler = torch.amp.GradScaler(triton_device.type, init_scale=2.0 ** 10)
    scaler.scale(model(torch.randn(4, 8).to(triton_device)).sum()).backward()
    model[0].weight.grad[0, 0] = float('inf')
    before = [p.clone() for p in model.parameters()]
    scaler.step(fused)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert fused.state_dict()['nonfinite'] == dict(skipped=0, consecutive=0)


@pytest.mark.parametrize('make, pattern', [
    (lambda d: [torch.zeros(3, dtype=torch.float64, device=d)] * 3, 'float64'),
    (lambda d: [torch.zeros(3, device=d), torch.zeros(3, dtype=torch.float16, device=d),
                torch.zeros(3, device=d)], 'grad 0 is torch.float16'),
    (lambda d: [torch.zeros(3, device=d), torch.zeros(4, device=d),
                torch.zeros(3, device=d)], 'differ'),
])
def test_refuses_what_it_cannot_take_and_touches_nothing(triton_device, make, pattern):
    p, g, m = make(triton_device)
    before = [t.clone() for t in (p, g, m)]
    with pytest.raises(RuntimeError, match=pattern):
        lion([p], [g], [m], fused=True, **HYPER)
    assert all(torch.equal(a, b) for a, b in zip((p, g, m), before))


def test_pointer_tables_are_reused_while_tensors_stay_put(triton_device):
    lists = tensors(triton_device)
    first = lion_triton._table(*lists)
    assert lion_triton._table(*lists) is first
    moved = cloned(lists)
    assert lion_triton._table(*moved) is not first


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
@pytest.mark.parametrize('options', [dict(), dict(skip_nonfinite=True), dict(cautious=True)],
                         ids=str)
@pytest.mark.parametrize('lr', ['number', 'tensor'])
def test_no_host_sync_on_cuda(options, lr):
    """The fused step, with the guard and under a GradScaler, never waits for the GPU:
    with a number lr on the step plan (the usual path), and with a Tensor lr (no
    plan: every value is read afresh each step)."""
    model, _ = model_and_twin(torch.device('cuda'))
    value = 1e-3 if lr == 'number' else torch.tensor(1e-3, device='cuda')
    optimizer = Lion(model.parameters(), lr=value, fused=True, **options)
    scaler = torch.amp.GradScaler('cuda')
    x = torch.randn(4, 8, device='cuda')
    for warmup in (True, False):
        scaler.scale(model(x).sum()).backward()
        torch.cuda.set_sync_debug_mode('default' if warmup else 'error')
        try:
            optimizer.step()
            scaler.step(optimizer)
        finally:
            torch.cuda.set_sync_debug_mode('default')
        scaler.update()
        assert (optimizer._step_plan is not None) == (lr == 'number')


@pytest.mark.slow
def test_compiles_for_sm90_with_wide_loads_and_no_shared_memory_staging():
    """Compiled for an H100/H200 (no GPU needed), the full-block path moves param, grad
    and exp_avg with vector instructions in every variant: 128-bit where the dtypes
    match, and in a mixed pair (fp32 with bf16) 128-bit for the wider tensors and 64-bit
    for the narrower one, with no staging through shared memory (no bar.sync)."""
    out = python_tool('tools/analysis_tools/inspect_triton_kernel.py', '--arch', '90',
                      env={'TRITON_INTERPRET': '0'}, timeout=600)
    rows = [[c.strip() for c in line.split('|')[1:-1]] for line in out.splitlines()
            if line.startswith('| ') and not line.startswith(('| variant', '| ---'))]
    assert len(rows) == 6, out
    for name, loads_v4, loads_v2, stores_v4, stores_v2, barriers in rows:
        loads_v4, loads_v2, stores_v4, stores_v2 = map(int, (loads_v4, loads_v2, stores_v4,
                                                            stores_v2))
        assert int(barriers) == 0, (name, out)
        if 'bf16' in name and 'fp32' in name:  # a mixed pair
            assert loads_v4 >= 2 and loads_v2 >= 2 and stores_v4 >= 2 and stores_v2 >= 2, \
                (name, out)
        else:
            assert loads_v4 >= 3 and stores_v4 >= 2, (name, out)


def test_lion_class_over_groups_equals_the_for_loop_and_round_trips(triton_device):
    """Three param groups (two batched together), a None grad, bf16 state, and a
    state-dict round trip mid-run; a deepcopy keeps GradScaler's hand-off."""
    model, twin = model_and_twin(triton_device)

    def groups(net):
        return [{'params': [net[0].weight], 'weight_decay': 0.5},
                {'params': [net[0].bias, net[2].bias]},
                {'params': [net[2].weight]}]
    fused = Lion(groups(model), lr=1e-2, fused=True, state_dtype=torch.bfloat16)
    loop = Lion(groups(twin), lr=1e-2, foreach=False, state_dtype=torch.bfloat16)
    gen = torch.Generator().manual_seed(2)
    for step in range(3):
        x = torch.randn(4, 8, generator=gen).to(triton_device)
        for optimizer, net in ((fused, model), (loop, twin)):
            optimizer.zero_grad()
            net(x).sum().backward()
            if step == 1:
                net[0].bias.grad = None
            optimizer.step()
        if step == 1:
            fused.load_state_dict(copy.deepcopy(fused.state_dict()))
    assert copy.deepcopy(fused)._step_supports_amp_scaling
    assert fused.state[model[2].weight]['exp_avg'].dtype == torch.bfloat16
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, **FP32)


@pytest.mark.skipif(lion_triton.available(), reason='the installed Triton runs the kernel')
def test_fused_with_an_older_triton_is_refused_at_construction(monkeypatch):
    """torch 2.1-2.3 bring Triton 2.x, which cannot compile the kernel: ``fused=True``
    with CUDA parameters says so when the optimizer is built, not deep inside Triton
    at the first step. CPU tensors stand in for CUDA ones here."""
    monkeypatch.setattr(lion_triton, 'DEVICE_TYPES', {'cuda', 'cpu'})
    with pytest.raises(RuntimeError, match=r'fused=True .* needs triton >= 3\.0; triton'):
        Lion([torch.nn.Parameter(torch.zeros(3))], fused=True)
    Lion([torch.nn.Parameter(torch.zeros(3))], foreach=True)  # what the message advises


def test_search_steps_cover_the_count_with_few_kernel_variants():
    counts = range(1, 300_000, 7)
    steps = [lion_triton.search_steps(n) for n in counts]
    assert all(2 ** s >= n for s, n in zip(steps, counts))  # enough to find any tensor
    assert len(set(steps)) <= 5  # compiled variants, up to 300k tensors
    # 17, 33 and 200 tensors cross 2**5, 2**6 and 2**7: one variant for all of them
    assert lion_triton.search_steps(17) == lion_triton.search_steps(33) == \
        lion_triton.search_steps(200)


def test_tables_of_many_buckets_stay_cached(triton_device):
    """Layer-wise lr decay makes about 50 buckets a step: none is evicted by the others."""
    buckets = [tensors(triton_device) for _ in range(60)]
    first = [lion_triton._table(*lists) for lists in buckets]
    assert all(lion_triton._table(*lists) is table for lists, table in zip(buckets, first))


def test_a_cpu_tensor_lr_is_read_on_the_host_for_gpu_parameters():
    """torch's fused AdamW takes a CPU Tensor lr for CUDA parameters as a scalar; the
    Triton step must not hand the kernel a CPU pointer."""
    cuda = torch.device('cuda')
    lr = torch.tensor(1e-3)
    assert lion_triton._on_device_or_float(lr, cuda) == pytest.approx(1e-3)
    assert isinstance(lion_triton._on_device_or_float(lr, cuda), float)
    on_device = torch.tensor(1e-3)
    assert lion_triton._on_device_or_float(on_device, torch.device('cpu')) is on_device
    assert lion_triton._on_device_or_float(None, cuda) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cpu_tensor_lr_on_cuda_steps_like_a_float():
    model, twin = model_and_twin(torch.device('cuda'))
    tensor_lr = Lion(model.parameters(), lr=torch.tensor(1e-2), fused=True,
                     decoupled_weight_decay=True, weight_decay=0.1)
    float_lr = Lion(twin.parameters(), lr=1e-2, foreach=False, decoupled_weight_decay=True,
                    weight_decay=0.1)
    x = torch.randn(4, 8, device='cuda')
    for optimizer, net in ((tensor_lr, model), (float_lr, twin)):
        net(x).sum().backward()
        optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, **FP32)


def test_an_unaligned_tensor_gets_a_launch_of_its_own(triton_device, monkeypatch):
    """A view at a 4-byte offset beside aligned tensors: two launches, the aligned ones
    still with 16-byte loads (ALIGNED=True), and results equal to the for-loop."""
    gen = torch.Generator().manual_seed(4)
    storage = [torch.randn(2 * lion_triton.BLOCK + 1, generator=gen).to(triton_device)
               for _ in range(3)]
    odd = [t[1:] for t in storage]  # data_ptr 4 bytes past a 16-byte boundary
    lists = tensors(triton_device)
    lists = [lst + [o] for lst, o in zip(lists, odd)]
    loop = cloned(lists)
    launches = []
    kernel = TRITON.get().lion_kernel

    class Counting:
        def __getitem__(self, grid):
            launched = kernel[grid]
            return lambda *args, **kwargs: (launches.append(kwargs['ALIGNED']),
                                            launched(*args, **kwargs))
    monkeypatch.setattr(TRITON.get(), 'lion_kernel', Counting())
    lion(*lists, fused=True, **HYPER)
    single_tensor_lion(*loop, **HYPER)
    assert sorted(launches) == [False, True]
    for a, b in zip(lists[0] + lists[2], loop[0] + loop[2]):
        torch.testing.assert_close(a, b, **FP32)


def test_graph_capture_is_refused_with_a_clear_error(monkeypatch):
    """While a CUDA graph is being captured, the fused step and the guard's host copy
    raise, naming what cannot be captured (here the capture is simulated: no GPU)."""
    from mmlion.ops.common import refuse_graph_capture
    monkeypatch.setattr(torch.cuda, 'is_current_stream_capturing', lambda: True)
    with pytest.raises(RuntimeError, match=r'Lion\(fused=True\) cannot be captured in a CUDA'):
        refuse_graph_capture(torch.device('cuda', 0), 'Lion(fused=True)')
    refuse_graph_capture(torch.device('cpu'), 'Lion(fused=True)')  # nothing to refuse


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_graph_capture_of_the_fused_step_raises_on_cuda():
    model, _ = model_and_twin(torch.device('cuda'))
    optimizer = Lion(model.parameters(), lr=1e-2, fused=True)
    model(torch.randn(4, 8, device='cuda')).sum().backward()
    optimizer.step()  # warm: tables built
    before = [p.clone() for p in model.parameters()]
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match='cannot be captured in a CUDA graph'):
        with torch.cuda.graph(graph):
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_a_side_stream_waits_for_the_table_and_keeps_it_alive():
    """A step on a side stream after one on the default stream reads the cached table
    only after its copy, and the table is recorded on that stream; the result equals
    the for-loop's."""
    model, twin = model_and_twin(torch.device('cuda'))
    fused = Lion(model.parameters(), lr=1e-2, fused=True)
    loop = Lion(twin.parameters(), lr=1e-2, foreach=False)
    side = torch.cuda.Stream()
    for step in range(3):
        x = torch.randn(4, 8, device='cuda')
        for optimizer, net in ((fused, model), (loop, twin)):
            optimizer.zero_grad(set_to_none=False)
            net(x).sum().backward()
            if step == 2 and optimizer is fused:
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    optimizer.step()
                torch.cuda.current_stream().wait_stream(side)
            else:
                optimizer.step()
    tables = [launch.table for plan in fused._step_plan.host_plans()
              for launch in plan['launches']]
    assert tables and all(side in table.streams for table in tables)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, **FP32)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs two GPUs')
def test_parameters_on_a_device_that_is_not_current():
    model, twin = model_and_twin(torch.device('cuda', 1))
    fused = Lion(model.parameters(), lr=1e-2, fused=True)
    loop = Lion(twin.parameters(), lr=1e-2, foreach=False)
    x = torch.randn(4, 8, device='cuda:1')
    with torch.cuda.device(0):
        for optimizer, net in ((fused, model), (loop, twin)):
            net(x).sum().backward()
            optimizer.step()
    torch.cuda.synchronize(1)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, **FP32)
