"""mmlion's Lion through MMEngine's own builders, wrappers, schedulers and Runner."""
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.optim import build_optim_wrapper
from mmengine.optim.scheduler import CosineAnnealingMomentum, LinearLR
from mmengine.runner import Runner

import mmlion  # noqa: F401  (registers type='Lion')
from mmlion.optim import Lion


class ToyNet(BaseModel):
    """conv + BN + linear: a weight, a bias and a norm layer of each kind."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        x = self.bn(self.conv(inputs)).relu().mean(dim=(2, 3))
        out = self.fc(x).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - targets) ** 2).mean())
        return out


def test_paramwise_cfg_groups_have_exact_lr_and_weight_decay():
    model = ToyNet()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=3e-4, betas=(0.95, 0.98), weight_decay=0.5),
        paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bias_lr_mult=2.0)))
    optimizer = wrapper.optimizer
    assert type(optimizer) is Lion
    expected = {  # name -> (lr, weight_decay)
        'conv.weight': (3e-4, 0.5), 'conv.bias': (6e-4, 0.0),
        'bn.weight': (3e-4, 0.0), 'bn.bias': (3e-4, 0.0),
        'fc.weight': (3e-4, 0.5), 'fc.bias': (6e-4, 0.0)}
    by_param = {p: name for name, p in model.named_parameters()}
    assert len(optimizer.param_groups) == len(expected)  # one group per parameter
    for group in optimizer.param_groups:
        (param,) = group['params']
        lr, wd = expected[by_param[param]]
        assert group['lr'] == pytest.approx(lr, rel=1e-12), by_param[param]
        assert group['weight_decay'] == wd, by_param[param]
        assert group['betas'] == (0.95, 0.98)


def test_optim_wrapper_clip_and_accumulation_steps_once_per_window():
    model = ToyNet()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=1e-3, weight_decay=0.1),
        clip_grad=dict(max_norm=1.0, norm_type=2), accumulative_counts=2))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    inputs, targets = torch.randn(4, 3, 5, 5), torch.randn(4)
    wrapper.update_params(model(inputs, targets, mode='loss')['loss'])
    assert all(torch.equal(before[k], v) for k, v in model.named_parameters())
    wrapper.update_params(model(inputs, targets, mode='loss')['loss'])
    assert not torch.equal(before['conv.weight'], model.conv.weight.detach())
    # a Lion step moves every weight element by lr * (sign + decay): at most 1.1 * lr
    delta = (model.conv.weight.detach() - before['conv.weight']).abs().max().item()
    assert delta <= 1e-3 * (1 + 0.1 * before["conv.weight"].abs().max().item()) + 1e-7


def test_momentum_scheduler_schedules_beta1_only():
    model = ToyNet()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=1e-3, betas=(0.9, 0.99))))
    scheduler = CosineAnnealingMomentum(wrapper, T_max=10, eta_min=0.8)
    betas = []
    inputs, targets = torch.randn(4, 3, 5, 5), torch.randn(4)
    for _ in range(10):
        wrapper.update_params(model(inputs, targets, mode='loss')['loss'])
        scheduler.step()
        betas.append(wrapper.optimizer.param_groups[0]['betas'])
    assert all(b2 == 0.99 for _, b2 in betas)
    beta1 = [b1 for b1, _ in betas]
    assert all(b <= a for a, b in zip(beta1, beta1[1:]))  # cosine goes down
    assert beta1[0] < 0.9 and beta1[-1] == pytest.approx(0.8)


def test_decoupled_weight_decay_reads_initial_lr_from_mmengine_scheduler():
    model = ToyNet()
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type='Lion', lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)))
    LinearLR(wrapper, start_factor=0.5, by_epoch=False, begin=0, end=4)
    group = wrapper.optimizer.param_groups[0]
    assert group['initial_lr'] == 1e-2 and group['lr'] == pytest.approx(5e-3)


@pytest.mark.slow
def test_runner_trains_with_type_lion(tmp_path):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 3, 5, 5, generator=gen)
    targets = inputs.mean(dim=(1, 2, 3)) * 3

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            return dict(inputs=inputs[i], targets=targets[i])

    losses = []

    from mmengine.hooks import Hook

    class RecordLoss(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            losses.append(outputs['loss'].item())

    runner = Runner(
        model=ToyNet(), work_dir=str(tmp_path),
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
