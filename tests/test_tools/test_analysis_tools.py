"""The analysis tools: the AdamW-to-Lion converter on MMDetection's own configs, the
schedule plot and the memory per rank (real runs, real PNGs). The evidence studies'
tests are in tests/test_projects/."""
import contextlib
import copy
import glob
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

from helpers import DEMO, ROOT, free_port, load_tool, png_size, run_tool
from mmlion.engine.lr_scaling import LION_DEFAULT_RULE, rule_label
from mmlion.optim import Lion

converter = load_tool('tools/misc/adamw_to_lion.py')
vis_scheduler = load_tool('tools/analysis_tools/vis_scheduler.py')
compare_runs = load_tool('tools/analysis_tools/compare_runs.py')


def _configs_of(package, kind='AdamW', folders=('**', ), unloadable=(ImportError, )):
    """``package::path`` of every config under ``folders`` of ``package`` whose optimizer
    is ``kind``, among those that load here (``unloadable``: the errors of those that
    do not, as they need packages not installed here)."""
    import importlib
    root = osp.join(osp.dirname(importlib.import_module(package).__file__), '.mim', 'configs')
    found = []
    for folder in folders:
        for path in sorted(glob.glob(osp.join(root, folder, '*.py'), recursive=True)):
            if '/_base_/' in path:
                continue
            try:
                cfg = Config.fromfile(path)
            except unloadable:
                continue
            optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
            if optimizer.get('type') == kind:
                found.append(f'{package}::{osp.relpath(path, root)}')
    return found


ADAMW = _configs_of('mmdet', folders=('rtmdet', 'retinanet', 'faster_rcnn', 'dino'))


def test_there_are_adamw_configs_to_convert():
    assert len(ADAMW) >= 20, ADAMW
    folders = {c.split('/')[0] for c in ADAMW}
    assert folders == {'mmdet::rtmdet', 'mmdet::faster_rcnn', 'mmdet::dino'}


def _unscoped(value):
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_unscoped(v) for v in value]
    return value


def _check_numbers(source, converted, ratio, scale):
    src, new = source.optim_wrapper.optimizer, converted.optim_wrapper.optimizer
    assert new.type == 'Lion' and 'eps' not in new
    assert new.lr == pytest.approx(src.lr * scale, rel=1e-5)
    assert new.lr * new.weight_decay == pytest.approx(src.lr * src.get('weight_decay', 0),
                                                      rel=1e-4)
    listed = [s if isinstance(s, (list, tuple)) else [s]
              for s in (source.get('param_scheduler') or [],
                        converted.get('param_scheduler') or [])]
    for old_s, new_s in zip(*listed):
        for key, value in old_s.items():
            if key in converter.LR_FIELDS and value:
                assert new_s[key] == pytest.approx(value * scale, rel=1e-5), key
            else:
                assert new_s[key] == value, key
    # Everything else is inherited untouched (mmengine adds _scope_ to inherited dicts).
    assert _unscoped(converted.optim_wrapper.get('paramwise_cfg')) == \
        _unscoped(source.optim_wrapper.get('paramwise_cfg'))
    assert _unscoped(converted.model) == _unscoped(source.model)
    assert 'mmlion' in converted.custom_imports.imports


@contextlib.contextmanager
def _parameters_on_meta():
    """Each parameter moves to the meta device as its module registers it, before the
    module initialises it: for models that compute with tensors while they build
    (``linspace(...).item()``), which ``torch.device('meta')`` cannot build."""
    register = torch.nn.Module.register_parameter

    def register_on_meta(module, name, param):
        if param is not None and param.device.type != 'meta':
            param = torch.nn.Parameter(param.to('meta'), requires_grad=param.requires_grad)
        register(module, name, param)

    torch.nn.Module.register_parameter = register_on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def _build_with_lion(converted, scope):
    init_default_scope(scope)
    model_cfg = converted.model.copy()
    model_cfg.pop('init_cfg', None)
    attempts = (lambda: torch.device('meta'),  # the structure, without allocating weights
                _parameters_on_meta,  # for models that compute values while they build
                contextlib.nullcontext)  # for models that use their weights while they build
    for attempt, context in enumerate(attempts, 1):
        try:
            with context():
                model = MODELS.build(copy.deepcopy(model_cfg))
            break
        except Exception:
            if attempt == len(attempts):
                raise
    wrapper_cfg = copy.deepcopy(converted.optim_wrapper)
    if wrapper_cfg.get('type') == 'AmpOptimWrapper':  # needs a GPU; the optimizer is the same
        wrapper_cfg.update(type='OptimWrapper')
        for amp_only in ('loss_scale', 'dtype', 'use_fsdp'):
            wrapper_cfg.pop(amp_only, None)
    return build_optim_wrapper(model, wrapper_cfg)


@pytest.mark.slow
@pytest.mark.parametrize('config', ADAMW)
def test_converter_round_trips_mmdet_adamw_configs(config, tmp_path):
    ratio = 10 if 'rtmdet' in config else 3
    out = converter.main([config, '--lr-ratio', str(ratio), '--out', str(tmp_path / 'c.py')])
    source = Config.fromfile(converter.resolve(config)[0])
    converted = Config.fromfile(out)
    _check_numbers(source, converted, ratio, 1 / ratio)
    wrapper = _build_with_lion(converted, 'mmdet')
    assert type(wrapper.optimizer) is Lion
    assert wrapper.optimizer.defaults['lr'] == converted.optim_wrapper.optimizer.lr


# Models that cannot be built on this machine, whatever the optimizer: their configs
# are converted and loaded, and only the model build is skipped.
UNBUILDABLE_HERE = (
    'requires extra multi-modal dependencies',  # mmpretrain's BLIP, OFA, ... (transformers)
    'To use VPD model, please install',         # mmseg's VPD (diffusers)
    'urlopen error',                             # downloads a teacher while it builds
    'can not be found',                          # LoRA: reads a checkpoint while it builds
    'switch_to_deploy() takes',                  # mmpretrain 1.2.0's LeViT deploy configs
)


@pytest.mark.slow
@pytest.mark.parametrize('package,at_least', [('mmpretrain', 250), ('mmseg', 90)])
def test_converter_round_trips_every_adamw_config_of(package, at_least, tmp_path):
    """Every AdamW config of mmpretrain 1.2.0 (288) and mmseg 1.2.2 (102) that loads here
    converts (eps and AdamW's betas dropped, lr * weight_decay held, schedules scaled)
    and builds its model with Lion, but for models that cannot be built here at all."""
    # mmpretrain: 4 configs mix lazy-import and classic syntax (RuntimeError), 2 name
    # registry entries it lacks (KeyError)
    configs = _configs_of(package, unloadable=(ImportError, RuntimeError, KeyError))
    assert len(configs) >= at_least
    failures, unbuildable = [], []
    for config in configs:
        out = converter.main([config, '--out', str(tmp_path / 'c.py'), '--lr-ratio', '10'])
        converted = Config.fromfile(out)
        _check_numbers(Config.fromfile(converter.resolve(config)[0]), converted, 10, 1 / 10)
        try:
            wrapper = _build_with_lion(converted, converted.get('default_scope', package))
        except Exception as e:
            if any(reason in str(e) for reason in UNBUILDABLE_HERE):
                unbuildable.append(config)
                continue
            failures.append(f'{config}: {type(e).__name__}: {e}')
            continue
        if type(wrapper.optimizer) is not Lion:
            failures.append(f'{config}: built {type(wrapper.optimizer).__name__}')
    assert not failures, '\n'.join(failures)
    assert len(unbuildable) <= len(configs) // 8, unbuildable


@pytest.mark.parametrize('config', ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                                    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'])
def test_converter_takes_sgd_to_adamw_scale_first(config, tmp_path, capsys):
    out = converter.main([config, '--out', str(tmp_path / 'c.py'), '--lr-ratio', '10'])
    source, converted = Config.fromfile(converter.resolve(config)[0]), Config.fromfile(out)
    _check_numbers(source, converted, 10, 1 / (converter.SGD_TO_ADAMW * 10))
    printed = capsys.readouterr().out
    assert '| momentum | 0.9 | - |' in printed
    assert 'L2 penalty' in printed and 'below 64' in printed


ADAMW_DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_1xb16-adamw-24e_shapes.py')


@pytest.mark.parametrize('config,ratio,betas', [
    # total batch 16: ratio 3 and the stable betas, Lion's best lr on Shapes from AdamW's
    (ADAMW_DEMO, 3, converter.STABLE_BETAS),
    # 64 and 128 (the demo, its file named for the batch): 6, the tuned ratio at 64
    ('4xb16', 6, converter.STABLE_BETAS),
    ('8xb16', 6, converter.STABLE_BETAS),
    ('mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', 10, converter.BETAS),  # batch 256
])
def test_converter_default_follows_the_total_batch(config, ratio, betas, tmp_path, capsys):
    if 'xb' in config and '/' not in config:  # the AdamW demo at another total batch
        child = tmp_path / f'rtmdet_tiny_{config}-adamw-24e_shapes.py'
        child.write_text(f'_base_ = {ADAMW_DEMO!r}\n')
        config = str(child)
    out = converter.main([config, '--out', str(tmp_path / 'c.py')])
    source, converted = Config.fromfile(converter.resolve(config)[0]), Config.fromfile(out)
    _check_numbers(source, converted, ratio, 1 / ratio)
    assert tuple(converted.optim_wrapper.optimizer.betas) == betas
    with open(out) as f:
        assert f'--lr-ratio {ratio}' in f.read()  # the effective command, in the header
    printed = capsys.readouterr().out  # the default is explained, with its evidence
    batch = converter.total_batch_size(source, converter.resolve(config)[0])[0]
    assert f'lr / {ratio} (the default at total batch {batch}: ' in printed
    assert 'docs/evidence.md' in printed


def test_converter_table_and_warnings(tmp_path, capsys):
    adamw = ADAMW_DEMO
    out = converter.main([adamw, '--stable', '--lr-ratio', '10',
                          '--out', str(tmp_path / 'lion.py')])
    printed = capsys.readouterr().out
    assert '| lr | 0.004 | 0.0004 |' in printed
    assert '| weight_decay | 0.05 | 0.5 |' in printed
    assert '| betas | (0.9, 0.999) | (0.95, 0.98) |' in printed
    assert 'total batch size: 16' in printed and 'below 64' in printed
    # Lion's scaling rule, from the batch the AdamW recipe was tuned for.
    rule = LION_DEFAULT_RULE
    assert f'| auto_scale_lr.rule | MMEngine\'s linear | {rule_label(rule)} |' in printed
    assert Config.fromfile(out).auto_scale_lr == dict(enable=False, base_batch_size=16,
                                                      rule=rule)
    # The default conversion is the shipped Lion demo's recipe.
    default = converter.main([adamw, '--out', str(tmp_path / 'default.py')])
    shipped, converted = Config.fromfile(DEMO), Config.fromfile(default)
    for key in ('lr', 'weight_decay', 'betas'):
        assert converted.optim_wrapper.optimizer[key] == pytest.approx(
            shipped.optim_wrapper.optimizer[key])
    assert _unscoped(converted.optim_wrapper.paramwise_cfg) == \
        _unscoped(shipped.optim_wrapper.paramwise_cfg)
    assert converted.auto_scale_lr.base_batch_size == shipped.auto_scale_lr.base_batch_size
    with pytest.raises(ValueError, match=r"optim_wrapper.optimizer.type='Lion'.*knows"):
        converter.main([DEMO, '--out', str(tmp_path / 'x.py')])
    with pytest.raises(FileNotFoundError, match="CONFIG='nope.py'"):
        converter.main(['nope.py'])
    with pytest.raises(SystemExit, match='--lr-ratio=0.0'):
        converter.main([adamw, '--lr-ratio', '0'])
    # It replaces its own output, and nothing else: a user's file stays byte-identical.
    assert converter.main([adamw, '--out', out]) == out
    mine = tmp_path / 'mine.py'
    mine.write_text('# my config\n')
    with pytest.raises(SystemExit, match="--out=.*mine.py.*mmlion did not write it"):
        converter.main([adamw, '--out', str(mine)])
    assert mine.read_text() == '# my config\n'


def test_vis_scheduler_plots_the_demo_schedule(tmp_path, shapes_data):
    out = tmp_path / 'schedule.png'
    values = vis_scheduler.main([DEMO, '--out', str(out)])
    cfg = Config.fromfile(DEMO)
    lr = cfg.optim_wrapper.optimizer.lr
    assert len(values['lr']) == 24 * 30  # 480 images / 16 per batch, 24 epochs
    assert values['lr'][0] == pytest.approx(lr * 1e-3)
    assert max(values['lr']) <= lr
    assert values['lr'][-1] == pytest.approx(lr * 0.05, rel=0.02)
    assert set(values['beta1']) == {cfg.optim_wrapper.optimizer.betas[0]}
    assert png_size(out) == (1000, 600)


def test_vis_scheduler_follows_a_beta1_schedule(tmp_path):
    base = osp.join(ROOT, 'configs/_base_/schedules/lion_warmup-cosine_beta1-cosine.py')
    values = vis_scheduler.main([base, '--epoch-length', '10', '--out', str(tmp_path / 'b.png')])
    assert values['beta1'][0] == pytest.approx(0.95)
    assert values['beta1'][-1] < 0.86


@pytest.mark.slow
def test_memory_per_rank_shows_what_each_engine_shards():
    """Two real ranks: DDP holds everything, ZeRO halves Lion's state, FSDP2 and FSDP1
    halve parameters, gradients and state, DeepSpeed ZeRO-1/2 halve gradients and state
    and add a half-size fp32 master copy (ResNet-50's shapes, about 25 s)."""
    out = run_tool([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
                    '--master_port', str(free_port()),
                    'tools/analysis_tools/memory_per_rank.py', '--model', 'resnet50'],
                   timeout=600)
    rows = {cells[0]: [float(c) for c in cells[1:]] for cells in
            ([c.strip() for c in line.split('|')[1:-1]] for line in out.splitlines()
             if line.startswith('| ') and not line.startswith(('| engine', '| ---')))}
    assert rows['DDP'] == [4.0, 0.0, 4.0, 4.0, 12.0]
    params, master, grads, state, _ = rows['mmlion ZeRO']
    assert (params, master, grads) == (4.0, 0.0, 4.0) and 1.9 <= state <= 2.5  # whole tensors
    for engine in ('FSDP2 fully_shard', 'FSDP1 (MMEngine FSDPStrategy)'):
        params, master, grads, state, _ = rows[engine]
        assert master == 0.0 and all(1.9 <= value <= 2.1 for value in (params, grads, state))
    for engine in ('DeepSpeed ZeRO-1', 'DeepSpeed ZeRO-2'):
        params, master, grads, state, _ = rows[engine]
        assert params == 4.0 and all(1.9 <= value <= 2.1 for value in (master, grads, state))


@pytest.mark.parametrize('options', [dict(), dict(foreach=True), dict(skip_nonfinite=True)],
                         ids=['defaults', 'foreach', 'guarded'])
def test_a_reused_step_decides_nothing_and_reaches_the_math_in_three_calls(options):
    """tools/analysis_tools/step_road.py on a step whose plan is reused: no implementation
    is chosen again, and the op doing the math is three calls below Lion.step
    (step -> _run_buckets -> the implementation -> the op)."""
    road = load_tool('tools/analysis_tools/step_road.py')
    calls, files, hops = road.road(**options)
    assert hops[0].endswith('lion.py:step') and len(hops) - 1 <= 3, hops
    assert not any('implementation.py' in call for call in calls), calls
