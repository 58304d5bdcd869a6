"""mmlion.GuardedOptimWrapper and GuardedAmpOptimWrapper, built through MMEngine's own
build_optim_wrapper: the skip, clipping's norm reused, accumulation, the state-dict
key, composition with AmpOptimWrapper, and the refusal to guard twice."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from _fault_support import NoisyToyModel
from mmlion.optim import GuardedAmpOptimWrapper, GuardedOptimWrapper
from mmlion.optim import nonfinite


def _model():
    torch.manual_seed(0)
    return NoisyToyModel()


def _wrapper(model, **cfg):
    base = dict(type='mmlion.GuardedOptimWrapper', optimizer=dict(type='AdamW', lr=1e-2))
    return build_optim_wrapper(model, dict(base, **cfg))


def _update(wrapper, model, poison=False):
    device = next(model.parameters()).device
    loss = model(torch.randn(3, 16, device=device), torch.randint(0, 4, (3,), device=device),
                 mode='loss')['loss']
    wrapper.update_params(loss * float('nan') if poison else loss)


def _snapshot(model, wrapper):
    return ([p.detach().clone() for p in model.parameters()],
            copy.deepcopy(wrapper.optimizer.state_dict()['state']))


def _assert_same(a, b):
    for x, y in zip(a[0], b[0]):
        assert torch.equal(x, y)
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        for name, value in a[1][key].items():
            assert torch.equal(value, b[1][key][name]), (key, name)


@pytest.mark.parametrize('clip', [None, dict(max_norm=1.0), dict(type='value', clip_value=0.5)])
def test_nonfinite_step_is_skipped_with_and_without_clipping(clip, monkeypatch):
    model = _model()
    wrapper = _wrapper(model, clip_grad=clip, max_consecutive_skips=3)
    assert isinstance(wrapper, GuardedOptimWrapper)
    reads = []
    real = nonfinite.found_nonfinite
    monkeypatch.setattr(nonfinite, 'found_nonfinite',
                        lambda t: reads.append(len(t)) or real(t))
    _update(wrapper, model)
    before = _snapshot(model, wrapper)
    _update(wrapper, model, poison=True)
    _assert_same(before, _snapshot(model, wrapper))
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())  # zeroed
    assert wrapper.state_dict()['nonfinite'] == dict(skipped=1, consecutive=1)
    # With norm clipping the guard reads clipping's total norm, not the gradients.
    every = len(list(model.parameters()))
    whole_passes = [n for n in reads if n == every]  # the log's search for the bad one aside
    assert len(whole_passes) == (0 if clip and 'max_norm' in clip else 2)
    _update(wrapper, model)
    assert not torch.equal(before[0][0], next(model.parameters()).detach())
    assert wrapper.state_dict()['nonfinite'] == dict(skipped=1, consecutive=0)
    assert wrapper.message_hub.get_scalar('train/nonfinite_skips').current() == 1


def test_skips_in_a_row_stop_and_counts_round_trip():
    model = _model()
    wrapper = _wrapper(model, max_consecutive_skips=2)
    _update(wrapper, model, poison=True)
    with pytest.raises(FloatingPointError, match='2 steps in a row'):
        _update(wrapper, model, poison=True)
    fresh = _wrapper(_model())
    fresh.load_state_dict(wrapper.state_dict())
    assert fresh.nonfinite_guard.state_dict() == dict(skipped=2, consecutive=2)


def test_accumulation_checks_once_per_window():
    model = _model()
    wrapper = _wrapper(model, accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 4)
    _update(wrapper, model, poison=True)  # inside the window: no step, no check yet
    before = _snapshot(model, wrapper)
    _update(wrapper, model)  # the window's step sees the NaN and is skipped
    _assert_same(before, _snapshot(model, wrapper))
    assert wrapper.nonfinite_guard.skipped == 1


def test_guarding_twice_is_refused():
    with pytest.raises(ValueError, match='skip_nonfinite=True too'):
        _wrapper(_model(), optimizer=dict(type='Lion', skip_nonfinite=True))
    with pytest.raises(ValueError, match='max_consecutive_skips=0'):
        _wrapper(_model(), max_consecutive_skips=0)


def test_amp_wrapper_composes(monkeypatch):
    """GuardedAmpOptimWrapper is AmpOptimWrapper underneath. Without CUDA the GradScaler
    is disabled (MMEngine refuses AMP on CPU; the check is lifted for this test), so
    the guard does the skipping itself."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    model = _model()
    with pytest.warns(UserWarning):  # torch: the CUDA GradScaler is disabled here
        wrapper = build_optim_wrapper(model, dict(
            type='mmlion.GuardedAmpOptimWrapper', optimizer=dict(type='Lion', lr=1e-3),
            clip_grad=dict(max_norm=1.0), max_consecutive_skips=5))
    assert isinstance(wrapper, GuardedAmpOptimWrapper)
    assert not wrapper.loss_scaler.is_enabled()
    _update(wrapper, model)
    before = _snapshot(model, wrapper)
    _update(wrapper, model, poison=True)
    _assert_same(before, _snapshot(model, wrapper))
    state = wrapper.state_dict()
    assert state['nonfinite'] == dict(skipped=1, consecutive=1) and 'loss_scaler' in state


def _scaled_overflow(wrapper, model, factor):
    """A loss whose gradients are finite but overflow fp32 once the GradScaler scales them
    (an fp16 overflow, in fp32's range)."""
    loss = model(torch.randn(3, 16), torch.randint(0, 4, (3,)), mode='loss')['loss']
    wrapper.update_params(loss * factor)


@pytest.mark.skipif(not hasattr(torch.amp, 'GradScaler'),
                    reason='a GradScaler on the CPU needs torch >= 2.3')
@pytest.mark.parametrize('loss_scale', ['dynamic', 512.0])
@pytest.mark.parametrize('clip', [None, dict(max_norm=1.0)], ids=['no-clip', 'clip'])
def test_amp_wrapper_skips_and_counts_a_real_grad_scaler_overflow(monkeypatch, loss_scale,
                                                                  clip):
    """A real GradScaler overflows (the scaled gradients reach Inf): the step is skipped
    with parameters and state unchanged, counted, the dynamic scale backs off, and
    ``max_consecutive_skips`` overflows in a row stop the run, with a static scale too.
    MMEngine builds CUDA's GradScaler and refuses AMP without a GPU: the hardware check is
    lifted and torch's CPU GradScaler, the same class, takes its place."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    model = _model()
    with pytest.warns(UserWarning):  # torch: the CUDA GradScaler is disabled here
        wrapper = build_optim_wrapper(model, dict(
            type='mmlion.GuardedAmpOptimWrapper', optimizer=dict(type='Lion', lr=1e-3),
            loss_scale=loss_scale, clip_grad=clip, max_consecutive_skips=3))
    init_scale = 2.0 ** 16 if loss_scale == 'dynamic' else loss_scale
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=init_scale)
    _update(wrapper, model)
    before = _snapshot(model, wrapper)
    scale = wrapper.loss_scaler.get_scale()
    _scaled_overflow(wrapper, model, 1e37)
    _assert_same(before, _snapshot(model, wrapper))
    assert wrapper.state_dict()['nonfinite'] == dict(skipped=1, consecutive=1)
    assert wrapper.loss_scaler.get_scale() == (scale / 2 if loss_scale == 'dynamic' else scale)
    _update(wrapper, model)
    assert not torch.equal(before[0][0], next(model.parameters()))
    assert wrapper.state_dict()['nonfinite'] == dict(skipped=1, consecutive=0)
    with pytest.raises(FloatingPointError, match='max_consecutive_skips=3'):
        for _ in range(3):
            _scaled_overflow(wrapper, model, 1e37)


@pytest.mark.parametrize('clip', [None, dict(max_norm=1.0)], ids=['no-clip', 'clip'])
def test_on_the_fused_gpu_step_the_verdict_goes_to_the_kernel(triton_device, monkeypatch,
                                                              clip):
    """With Lion(fused=True) on a GPU (Triton's interpreter here) the wrapper decides
    nothing on the host: its guard hands the kernel a flag on the device, which skips
    the step; the counts still reach the wrapper's state dict."""
    model = _model().to(triton_device)
    wrapper = _wrapper(model, optimizer=dict(type='Lion', lr=1e-2, fused=True),
                       clip_grad=clip, max_consecutive_skips=3)
    assert wrapper.optimizer.guards_on_device()

    def host_decision(*args, **kwargs):
        raise AssertionError('the guard decided on the host')

    monkeypatch.setattr(nonfinite, 'agree_across_ranks', host_decision)
    _update(wrapper, model)
    before = _snapshot(model, wrapper)
    _update(wrapper, model, poison=True)
    _assert_same(before, _snapshot(model, wrapper))
    assert wrapper.state_dict()['nonfinite'] == dict(skipped=1, consecutive=1)
    _update(wrapper, model)
    assert not torch.equal(before[0][0], next(model.parameters()))
    with pytest.raises(FloatingPointError, match='max_consecutive_skips=3'):
        for _ in range(4):
            _update(wrapper, model, poison=True)
