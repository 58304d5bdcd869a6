"""mmlion's Lion through MMEngine's own builders, wrappers, schedulers and Runner."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.optim.scheduler import CosineAnnealingMomentum, LinearLR
from mmengine.runner import Runner

from _fault_support import NoisyToyModel
from mmlion.optim import Lion


def batch(n=4):
    """Inputs and class targets for the toy model (tests/_fault_support.py)."""
    return torch.randn(n, 16), torch.randint(0, 4, (n,))


def test_paramwise_cfg_groups_have_exact_lr_and_weight_decay():
    model = NoisyToyModel()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=3e-4, betas=(0.95, 0.98), weight_decay=0.5),
        paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bias_lr_mult=2.0)))
    optimizer = wrapper.optimizer
    assert type(optimizer) is Lion
    expected = {  # name -> (lr, weight_decay)
        'fc1.weight': (3e-4, 0.5), 'fc1.bias': (6e-4, 0.0),
        'bn.weight': (3e-4, 0.0), 'bn.bias': (3e-4, 0.0),
        'fc2.weight': (3e-4, 0.5), 'fc2.bias': (6e-4, 0.0)}
    by_param = {p: name for name, p in model.named_parameters()}
    assert len(optimizer.param_groups) == len(expected)  # one group per parameter
    for group in optimizer.param_groups:
        (param,) = group['params']
        lr, wd = expected[by_param[param]]
        assert group['lr'] == pytest.approx(lr, rel=1e-12), by_param[param]
        assert group['weight_decay'] == wd, by_param[param]
        assert group['betas'] == (0.95, 0.98)


def test_optim_wrapper_clip_and_accumulation_steps_once_per_window():
    model = NoisyToyModel()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=1e-3, weight_decay=0.1),
        clip_grad=dict(max_norm=1.0, norm_type=2), accumulative_counts=2))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    inputs, targets = batch()
    wrapper.update_params(model(inputs, targets, mode='loss')['loss'])
    assert all(torch.equal(before[k], v) for k, v in model.named_parameters())
    wrapper.update_params(model(inputs, targets, mode='loss')['loss'])
    assert not torch.equal(before['fc1.weight'], model.fc1.weight.detach())
    # a Lion step moves every weight element by lr * (sign + decay): at most 1.1 * lr
    delta = (model.fc1.weight.detach() - before['fc1.weight']).abs().max().item()
    assert delta <= 1e-3 * (1 + 0.1 * before["fc1.weight"].abs().max().item()) + 1e-7


def test_momentum_scheduler_schedules_beta1_only():
    model = NoisyToyModel()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=1e-3, betas=(0.9, 0.99))))
    scheduler = CosineAnnealingMomentum(wrapper, T_max=10, eta_min=0.8)
    betas = []
    inputs, targets = batch()
    for _ in range(10):
        wrapper.update_params(model(inputs, targets, mode='loss')['loss'])
        scheduler.step()
        betas.append(wrapper.optimizer.param_groups[0]['betas'])
    assert all(b2 == 0.99 for _, b2 in betas)
    beta1 = [b1 for b1, _ in betas]
    assert all(b <= a for a, b in zip(beta1, beta1[1:]))  # cosine goes down
    assert beta1[0] < 0.9 and beta1[-1] == pytest.approx(0.8)


def test_decoupled_weight_decay_reads_initial_lr_from_mmengine_scheduler():
    model = NoisyToyModel()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)))
    LinearLR(wrapper, start_factor=0.5, by_epoch=False, begin=0, end=4)
    group = wrapper.optimizer.param_groups[0]
    assert group['initial_lr'] == 1e-2 and group['lr'] == pytest.approx(5e-3)


@pytest.mark.slow
def test_runner_trains_with_type_lion(tmp_path):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 16, generator=gen)
    targets = (inputs[:, 0] > 0).long() + 2 * (inputs[:, 1] > 0).long()  # 4 classes

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            return dict(inputs=inputs[i], target=targets[i])

    losses = []

    from mmengine.hooks import Hook

    class RecordLoss(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            losses.append(outputs['loss'].item())

    runner = Runner(
        model=NoisyToyModel(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=Data(), batch_size=16, shuffle=False,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='Lion', lr=1e-2, weight_decay=0.01),
                           paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=8),
                         dict(type='CosineAnnealingLR', by_epoch=True, begin=0, T_max=10,
                              convert_to_iter_based=True)],
        train_cfg=dict(by_epoch=True, max_epochs=10),
        custom_hooks=[dict(type=RecordLoss)],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=100),
                           checkpoint=dict(type='CheckpointHook', interval=100)),
        randomness=dict(seed=0), env_cfg=dict(dist_cfg=dict(backend='gloo')))
    runner.train()
    assert type(runner.optim_wrapper.optimizer) is Lion
    assert len(losses) == 40
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.5 * first, (first, last)
