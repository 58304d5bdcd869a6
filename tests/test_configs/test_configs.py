"""Every config under configs/ loads, builds its model and its optimizer (without
data or the internet), and gives the intended per-group lr / weight decay and the
intended warmup-plus-cosine curve."""
import glob
import math
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, PARAM_SCHEDULERS, init_default_scope
from mmengine.utils import import_modules_from_strings

from helpers import ROOT, torchvision_or_skip
from mmlion.cli.key_check import check_config_keys
from mmlion.cli.loop_check import check_loops
from mmlion.engine.lr_scaling import LION_DEFAULT_RULE, check_auto_scale_lr
from mmlion.engine.paramwise_report import unmatched_rules
from mmlion.optim import Lion, ZeroRedundancyOptimizer

LEAVES = sorted(glob.glob(osp.join(ROOT, 'configs', 'lion', '**', '*.py'), recursive=True)
                + glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '**', '*.py'),
                            recursive=True))
SCHEDULES = sorted(glob.glob(osp.join(ROOT, 'configs', '_base_', 'schedules', '*.py')))
LION_LEAVES = [c for c in LEAVES if 'adamw' not in osp.basename(c)]


def rel(path):
    return osp.relpath(path, ROOT)


def load(path):
    cfg = Config.fromfile(path)
    if cfg.get('default_scope') == 'mmpretrain':
        torchvision_or_skip()  # mmpretrain's models import torchvision
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    return cfg


def build_model(cfg):
    """The config's model from its own codebase's registry (mmdet, mmpretrain, mmseg);
    init_weights() is not called, so nothing downloads."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return MODELS.build(cfg.model)


# What mmpretrain's and mmseg's recipes must give named parameters, as (lr multiple,
# weight decay multiple) of the optimizer's: upstream's no-decay and head rules, kept.
GROUP_RULES = {
    'vit-base-p16_64xb64-lion_in1k.py': {
        'backbone.cls_token': (1, 0), 'backbone.pos_embed': (1, 0),
        'backbone.layers.0.ln1.weight': (1, 0),  # upstream decays ViT's norms; not here
        'backbone.layers.0.attn.qkv.weight': (1, 1), 'head.layers.head.weight': (1, 1)},
    'swin-tiny_16xb64-lion_in1k.py': {
        'backbone.stages.0.blocks.0.norm1.weight': (1, 0),
        'backbone.stages.0.blocks.0.attn.w_msa.qkv.bias': (1, 0),
        'backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table': (1, 0),
        'backbone.stages.0.blocks.0.attn.w_msa.qkv.weight': (1, 1),
        'head.fc.weight': (1, 1), 'head.fc.bias': (1, 0)},
    'resnet50_32xb64-warmup-coslr-lion_in1k.py': {
        'backbone.bn1.weight': (1, 0), 'backbone.layer1.0.bn1.bias': (1, 0),
        'backbone.conv1.weight': (1, 1), 'head.fc.weight': (1, 1), 'head.fc.bias': (1, 0)},
    'segformer_mit-b0_8xb2-lion-160k_ade20k-512x512.py': {
        'backbone.layers.0.0.norm.weight': (1, 0),
        'backbone.layers.0.1.0.attn.attn.in_proj_weight': (1, 1),
        'backbone.layers.0.1.0.attn.norm.bias': (1, 0),
        'decode_head.conv_seg.weight': (10, 1), 'decode_head.fusion_conv.bn.weight': (10, 0),
        'decode_head.conv_seg.bias': (10, 0), 'backbone.layers.0.2.weight': (1, 0)},
    'swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-lion-160k_ade20k-512x512.py': {
        'backbone.norm0.weight': (1, 0),
        'backbone.stages.0.blocks.0.norm1.weight': (1, 0),
        'backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table': (1, 0),
        'backbone.stages.0.blocks.0.attn.w_msa.qkv.weight': (1, 1),
        'decode_head.conv_seg.weight': (1, 1), 'auxiliary_head.conv_seg.weight': (1, 1)},
    # The demos shrink the recipes' models and keep their rules.
    'vit-tiny-p4_1xb32-lion-6e_shapes-crops.py': {
        'backbone.cls_token': (1, 0), 'backbone.pos_embed': (1, 0),
        'head.layers.head.weight': (1, 1)},
    'segformer-mit-b0_1xb8-lion-400i_shapes-masks.py': {
        'backbone.layers.0.0.norm.weight': (1, 0), 'decode_head.conv_seg.weight': (10, 1)},
}


def test_there_are_configs():
    names = {osp.basename(p) for p in LEAVES}
    for expected in ('rtmdet_tiny_8xb32-lion-300e_coco.py', 'rtmdet_s_8xb32-lion-300e_coco.py',
                     'retinanet_r50_fpn_8xb2-lion-1x_coco.py',
                     'faster-rcnn_r50_fpn_8xb2-lion-1x_coco.py',
                     'dino-4scale_r50_8xb2-lion-12e_coco.py',
                     'rtmdet_tiny_1xb16-lion-24e_shapes.py', *GROUP_RULES):
        assert expected in names
    assert len(SCHEDULES) >= 4


@pytest.mark.parametrize('path', SCHEDULES, ids=rel)
def test_schedule_bases_are_lion_and_say_so(path):
    cfg = load(path)
    assert cfg.custom_imports == dict(imports=['mmlion'], allow_failed_imports=False)
    assert cfg.optim_wrapper.optimizer.type == 'Lion'
    paramwise = cfg.optim_wrapper.paramwise_cfg
    assert (paramwise.norm_decay_mult, paramwise.bias_decay_mult,
            paramwise.flat_decay_mult) == (0, 0, 0)
    assert cfg.optim_wrapper.clip_grad.norm_type == 2
    assert [s['type'] for s in cfg.param_scheduler][:2] == ['LinearLR', 'CosineAnnealingLR']
    assert 'base_batch_size' in cfg.auto_scale_lr


@pytest.mark.parametrize('path', LEAVES, ids=rel)
def test_leaf_builds_model_and_optimizer(path, single_process_group):
    cfg = load(path)
    # mmlion's config checks that need no data or model: no false alarm on a recipe.
    check_config_keys(cfg)
    check_loops(cfg)
    # Every leaf checkpoints with mmlion's hook (bitwise resume, atomic writes).
    assert cfg.default_hooks.checkpoint.type == 'mmlion.ResumableCheckpointHook'
    model = build_model(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    optimizer = wrapper.optimizer
    # A rule that matches nothing is a warning: upstream bases carry rules for modules
    # a derived model may lack (SegFormer's 'pos_block'); a recipe's own rules all match.
    with open(path) as f:
        own = f.read()
    for message in unmatched_rules(model, cfg.optim_wrapper.get('paramwise_cfg')):
        key = message.split("custom_keys[")[1].split("]")[0]
        assert key not in own, message
    names = {p: n for n, p in model.named_parameters()}
    base = cfg.optim_wrapper.optimizer
    if 'adamw' in osp.basename(path):
        assert type(optimizer) is torch.optim.AdamW
        return
    if 'zero' in osp.basename(path):
        assert type(optimizer) is ZeroRedundancyOptimizer and type(optimizer.optim) is Lion
    else:
        assert type(optimizer) is Lion, rel(path)
    if osp.basename(path) in GROUP_RULES:
        groups = {names[p]: g for g in optimizer.param_groups for p in g['params']}
        for name, (lr_mult, decay_mult) in GROUP_RULES[osp.basename(path)].items():
            assert groups[name]['lr'] == pytest.approx(base.lr * lr_mult), name
            assert groups[name]['weight_decay'] == pytest.approx(
                base.weight_decay * decay_mult), name
        return
    if cfg.model.type == 'DigitsMLP':  # an MLP: no conv, norm or bias rules to check
        assert all(g['lr'] == pytest.approx(base.lr) for g in optimizer.param_groups)
        return
    lr_mults = {k: v.get('lr_mult', 1.0) for k, v in
                cfg.optim_wrapper.get('paramwise_cfg', {}).get('custom_keys', {}).items()}
    checked = dict(conv=0, norm=0, bias=0)
    for group in optimizer.param_groups:
        for param in group['params']:
            name = names[param]
            mult = next((m for key, m in lr_mults.items() if key in name), 1.0)
            assert group['lr'] == pytest.approx(base.lr * mult), name
            if param.ndim == 1:  # norm weights, biases and other flat params
                assert group['weight_decay'] == 0, name
                checked['bias' if name.endswith('bias') else 'norm'] += 1
            elif param.ndim == 4:  # conv weights keep the full decay
                assert group['weight_decay'] == base.weight_decay, name
                checked['conv'] += 1
    assert all(checked.values()), checked


NORM_TYPES = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm,
              torch.nn.modules.instancenorm._InstanceNorm)
DECAYED_TYPES = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)


@pytest.mark.parametrize('path', LION_LEAVES, ids=rel)
def test_norms_and_biases_get_no_weight_decay(path, single_process_group):
    """By module type, not by name: every norm layer's parameters (BatchNorm, SyncBN,
    GroupNorm, LayerNorm, whatever its name) and every bias get weight decay 0; conv
    and linear weights keep the recipe's weight decay."""
    cfg = load(path)
    model = build_model(cfg)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay = {id(p): g['weight_decay'] for g in optimizer.param_groups for p in g['params']}
    base = cfg.optim_wrapper.optimizer.weight_decay
    wrong, checked = [], dict(norm=0, bias=0, weight=0)
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f'{module_name}.{name}' if module_name else name
            if id(param) not in decay:  # frozen (requires_grad=False): not optimized
                continue
            if isinstance(module, NORM_TYPES) or name == 'bias':
                checked['norm' if isinstance(module, NORM_TYPES) else 'bias'] += 1
                if decay[id(param)] != 0:
                    wrong.append(f'{full} ({type(module).__name__}): {decay[id(param)]}')
            elif isinstance(module, DECAYED_TYPES) and name == 'weight':
                checked['weight'] += 1
                if decay[id(param)] != pytest.approx(base):
                    wrong.append(f'{full} ({type(module).__name__}) decayed by '
                                 f'{decay[id(param)]}, not {base}')
    assert not wrong, f'{len(wrong)} parameters: ' + '; '.join(wrong[:6])
    assert checked['bias'] and checked['weight'], checked


def _schedule(cfg, epoch_length):
    """lr per iteration under cfg.param_scheduler, without training."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s)
        s.setdefault('by_epoch', True)
        if s.pop('convert_to_iter_based', False):
            cls = PARAM_SCHEDULERS.get(s.pop('type'))
            schedulers.append(cls.build_iter_from_epoch(optimizer, epoch_length=epoch_length,
                                                        **s))
        else:
            schedulers.append(PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=optimizer)))
    lrs = []
    for _ in range(cfg.train_cfg.max_epochs * epoch_length):
        lrs.append(optimizer.param_groups[0]['lr'])
        for s in schedulers:
            if not s.by_epoch:
                s.step()
    return lrs


@pytest.mark.parametrize('name', ['rtmdet_tiny_1xb16-lion-24e_shapes.py'])
def test_demo_schedule_is_warmup_then_cosine(name):
    (path,) = [p for p in LEAVES if osp.basename(p) == name]
    cfg = load(path)
    epoch_length = 30
    lrs = _schedule(cfg, epoch_length)
    warmup_end = cfg.param_scheduler[0]['end']
    base_lr = cfg.optim_wrapper.optimizer.lr
    eta_min = cfg.param_scheduler[1]['eta_min']
    total = len(lrs)
    assert lrs[0] == pytest.approx(base_lr * cfg.param_scheduler[0]['start_factor'], rel=0.05)
    assert all(b > a for a, b in zip(lrs[:warmup_end - 1], lrs[1:warmup_end]))
    for it in range(warmup_end, total, 50):
        cosine = eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * it / total)) / 2
        # mmengine applies the cosine recursively, on top of the warmup's last factor
        assert lrs[it] == pytest.approx(cosine, rel=5e-3), it
    assert lrs[-1] == pytest.approx(eta_min, rel=0.05)


# Lion configs whose wrapper is not mmlion's guarded one, and why (docs/fault_tolerance.md).
UNGUARDED = {
    # evidence runs: the same wrapper as their AdamW twins, so that only the optimizer differs
    'mlp_1xb32-lion-20e_digits.py': 'OptimWrapper',
    'mlp_1xb16-lion-30e_lfw.py': 'OptimWrapper',
    # FSDP's and DeepSpeed's engines: the guard is tested under DDP and ZeRO only
    'rtmdet_tiny_2xb8-lion-fsdp-24e_shapes.py': 'OptimWrapper',
    'rtmdet_tiny_2xb8-lion-deepspeed-24e_shapes.py': 'DeepSpeedOptimWrapper',
}


@pytest.mark.parametrize('path', LION_LEAVES, ids=rel)
def test_every_lion_recipe_stops_a_run_that_goes_non_finite(path):
    """A run whose gradients stay NaN/Inf ends with FloatingPointError after 10 skipped
    steps instead of saving NaN weights: the guarded wrapper."""
    cfg = Config.fromfile(path)
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    expected = UNGUARDED.get(osp.basename(path), 'mmlion.GuardedOptimWrapper')
    assert wrapper in (expected, expected.replace('Optim', 'AmpOptim')), wrapper


@pytest.mark.parametrize('path', LION_LEAVES, ids=rel)
def test_recipes_state_the_batch_their_lr_was_tuned_for(path):
    """auto_scale_lr.base_batch_size is the total batch the file name states (``8xb32``:
    256), so --auto-scale-lr scales from the right batch, by Lion's rule."""
    cfg = Config.fromfile(path)
    name = re.search(r'_(\d+)xb(\d+)[-_]', osp.basename(path))
    processes, per_process = map(int, name.groups())
    assert cfg.auto_scale_lr.base_batch_size == processes * per_process
    assert cfg.train_dataloader.batch_size == per_process
    check_auto_scale_lr(cfg.auto_scale_lr)
    rule = cfg.auto_scale_lr.get('rule', LION_DEFAULT_RULE)
    assert rule == LION_DEFAULT_RULE, f'{rel(path)} scales by {rule!r}'
