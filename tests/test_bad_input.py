"""The bad-input table (docs/bad_input.md), walked row by row.

Each row feeds one wrong setting or file to the real code path (Lion, its state
dict loader, ZeRO, check_config, tools/train.py) and checks that the error names the
key or file and the value, and that nothing was lost: parameters, optimizer state and
files on disk are as they were.
"""
import copy
import hashlib
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple, Type

import pytest
import torch
from mmengine.config import Config

from helpers import DEMO, ROOT, generate_shapes, python_tool
from mmlion.optim import Lion, ZeroRedundancyOptimizer
from mmlion.optim.lion import lion as lion_fn
from mmlion.cli import ConfigError, check_config

DOC = osp.join(ROOT, 'docs', 'bad_input.md')


@dataclass
class Case:
    id: str
    run: Callable  # run(ctx, prepared) must raise
    error: Type[BaseException]
    says: Tuple[str, ...]  # substrings the message must contain (key/file, value)
    setup: Optional[Callable] = None  # setup(ctx) -> prepared: writes the bad files


class Context:
    """A model's parameters with one step of Lion state, and files to watch."""

    def __init__(self, tmp_path):
        torch.manual_seed(0)
        self.tmp = tmp_path
        self.params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(4))]
        self.optimizer = Lion(self.params, lr=1e-3, weight_decay=0.1)
        self.grad()
        self.optimizer.step()
        self.grad()
        self.watched: List[str] = []

    def grad(self, value=None):
        for p in self.params:
            p.grad = torch.randn_like(p) if value is None else torch.full_like(p, value)

    def snapshot(self):
        files = {}
        for path in self.watched:
            with open(path, 'rb') as f:
                files[path] = hashlib.sha256(f.read()).hexdigest()
        return ([p.detach().clone() for p in self.params],
                copy.deepcopy(self.optimizer.state_dict()), files)

    def watch(self, path):
        self.watched.append(str(path))
        return str(path)

    # -- files ----------------------------------------------------------------------
    def checkpoint(self, optimizer=None, name='epoch_1.pth'):
        optimizer = optimizer or self.optimizer
        path = self.tmp / name
        torch.save(dict(meta=dict(epoch=1, iter=5), state_dict={'w': self.params[0].detach()},
                        optimizer=optimizer.state_dict()), path)
        return self.watch(path)

    def config(self, text=None, **options):
        path = self.tmp / 'config.py'
        path.write_text(text if text is not None else f"_base_ = '{DEMO}'\n")
        self.watch(path)
        cfg = Config.fromfile(str(path))
        cfg.merge_from_dict(options)
        cfg.work_dir = str(self.tmp / 'work_dir')
        return cfg


def lion(**kwargs):
    return lambda ctx, _: Lion(ctx.params, **kwargs)


def config_case(**options):
    return lambda ctx, _: check_config(ctx.config(**options))


def _sparse(ctx, _):
    ctx.params[1].grad = torch.sparse_coo_tensor([[0]], [1.0], (4,))
    ctx.optimizer.step()


def _two_groups(ctx, _):
    Lion([{'params': ctx.params}, {'params': [ctx.params[0]]}])


def _guarded_optimizer(ctx):
    ctx.optimizer = Lion(ctx.params, skip_nonfinite=True, max_consecutive_skips=2)
    ctx.optimizer.step()  # one good step, so there is momentum to keep


def _nonfinite_in_a_row(ctx, _):
    ctx.grad(float('nan'))
    ctx.optimizer.step()
    ctx.optimizer.step()


def _adamw_state(ctx):
    """AdamW's state dict for parameters shaped like ctx's."""
    params = [torch.nn.Parameter(p.detach().clone()) for p in ctx.params]
    for p in params:
        p.grad = torch.ones_like(p)
    adamw = torch.optim.AdamW(params)
    adamw.step()
    return adamw


def _load_adamw(ctx, path=None):
    ctx.optimizer.load_state_dict(_adamw_state(ctx).state_dict())


def _load_shape(ctx, path=None):
    other = Lion([torch.nn.Parameter(torch.randn(2, 3)), torch.nn.Parameter(torch.randn(4))])
    for p in other.param_groups[0]['params']:
        p.grad = torch.ones_like(p)
    other.step()
    ctx.optimizer.load_state_dict(other.state_dict())


def _load_groups(ctx, path=None):
    other = Lion([{'params': [ctx.params[0]]}, {'params': [ctx.params[1]]}])
    ctx.optimizer.load_state_dict(other.state_dict())


def _zero_without_dist(ctx, path=None):
    ZeroRedundancyOptimizer(ctx.params, optimizer_type='Lion', lr=1e-4)


def _zero_unknown_type(ctx, path=None):
    check_config(ctx.config(**{'optim_wrapper.optimizer.type': 'mmlion.ZeroRedundancyOptimizer',
                               'optim_wrapper.optimizer.optimizer_type': 'Loin'}))


def _no_custom_imports(ctx, path=None):
    text = ("_base_ = '{}'\ncustom_imports = dict(imports=[], allow_failed_imports=False)\n"
            .format(DEMO))
    check_config(ctx.config(text=text))


def _decay_mult_custom_key(ctx, path=None):
    cfg = ctx.config()
    cfg.optim_wrapper.optimizer.pop('weight_decay')
    cfg.optim_wrapper.paramwise_cfg = dict(custom_keys={'backbone': dict(decay_mult=0.1)})
    check_config(cfg)


def _decay_mult(ctx, path=None):
    cfg = ctx.config()
    cfg.optim_wrapper.optimizer.pop('weight_decay')
    check_config(cfg)


def _resume(ctx, path):
    check_config(ctx.config(resume=True, load_from=path))


def _truncated(ctx):
    path = ctx.tmp / 'epoch_2.pth'
    data = open(ctx.checkpoint(), 'rb').read()
    path.write_bytes(data[:len(data) // 2])
    return ctx.watch(path)


def _corrupt(ctx):
    path = ctx.tmp / 'epoch_2.pth'
    path.write_bytes(os.urandom(4096))
    return ctx.watch(path)


def _other_optimizer_ckpt(ctx):
    return ctx.checkpoint(_adamw_state(ctx), name='adamw_epoch_1.pth')


def _pointer_to_truncated(ctx):
    path = _truncated(ctx)
    work_dir = ctx.tmp / 'work_dir'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text(path)
    ctx.watch(work_dir / 'last_checkpoint')


def _resume_auto_truncated(ctx, path=None):
    check_config(ctx.config(resume=True))


def _train_tool_truncated(ctx, path=None):
    """The same through tools/train.py: it fails before building the Runner."""
    out = python_tool('tools/train.py', DEMO, '--resume', path, '--work-dir',
                      ctx.tmp / 'tool_work_dir', timeout=300, expect_rc=None)
    assert 'Runner' not in out  # nothing was built
    raise ConfigError(out.strip().splitlines()[-1])


def _users_shapes_folder(ctx):
    root = ctx.tmp / 'my_data' / 'shapes'
    root.mkdir(parents=True)
    ctx.watch(root / 'photo.jpg')
    (root / 'photo.jpg').write_bytes(b'a user photo')
    return str(root)


def _generate_into(ctx, root):
    generate_shapes(root)


def _foreign_checkpoint(ctx):
    work_dir = ctx.tmp / 'work_dir'
    work_dir.mkdir()
    (work_dir / 'epoch_1.pth').write_bytes(b'a checkpoint of another run')
    return ctx.watch(work_dir / 'epoch_1.pth')


def _save_over(ctx, path):
    from mmlion.engine import AtomicLocalBackend
    AtomicLocalBackend().put(b'mmlion checkpoint', path)


def _guard_twice(ctx, _):
    from mmengine.optim import build_optim_wrapper
    build_optim_wrapper(torch.nn.Linear(2, 2), dict(
        type='mmlion.GuardedOptimWrapper', optimizer=dict(type='Lion', skip_nonfinite=True)))


def _fused_on_meta(ctx, _):
    meta = [torch.zeros(4, device='meta')]
    lion_fn(meta, meta, meta, fused=True, lr=1e-3, beta1=0.9, beta2=0.99, weight_decay=0.0)


def _folder_of_checkpoints(ctx):
    (ctx.tmp / 'run').mkdir()
    ctx.checkpoint(name='run/epoch_1.pth')
    return str(ctx.tmp / 'run')


def _train_tool_resume_folder(ctx, folder):
    """``tools/train.py CONFIG --resume WORK_DIR`` (a folder, not a file)."""
    out = python_tool('tools/train.py', DEMO, '--resume', folder, '--work-dir',
                      ctx.tmp / 'tool_work_dir', timeout=300, expect_rc=None)
    assert 'Runner' not in out  # nothing was built
    raise ConfigError(out.strip().splitlines()[-1])


def _load_from(ctx, path):
    check_config(ctx.config(load_from=path))


def _dist_train_zero(ctx, _):
    from helpers import run_tool
    out = run_tool(['bash', 'tools/dist_train.sh', DEMO, '0'], timeout=60, expect_rc=None)
    raise SystemExit(out.strip().splitlines()[-1])


CASES = [
    # -- Lion's constructor ----------------------------------------------------------
    Case('lr-negative', lion(lr=-1e-4), ValueError, ('lr=-0.0001',)),
    Case('lr-string', lion(lr='1e-4'), ValueError, ("lr='1e-4'", 'not a number')),
    Case('lr-nan', lion(lr=float('nan')), ValueError, ('lr=nan',)),
    Case('lr-tensor-shape', lion(lr=torch.ones(2)), ValueError, ('learning rate', '(2,)')),
    Case('betas-length', lion(betas=(0.9,)), ValueError, ('betas=(0.9,)', 'pair')),
    Case('betas-one', lion(betas=(1.0, 0.99)), ValueError, ('index 0', 'betas=(1.0, 0.99)')),
    Case('betas-negative', lion(betas=(0.9, -0.1)), ValueError, ('index 1', '-0.1')),
    Case('betas-scalar', lion(betas=0.9), ValueError, ('betas=0.9',)),
    Case('wd-negative', lion(weight_decay=-0.1), ValueError, ('weight_decay=-0.1',)),
    Case('wd-string', lion(weight_decay='0.1'), ValueError, ("weight_decay='0.1'",)),
    Case('lr-times-wd', lion(lr=1e4, weight_decay=0.5), ValueError,
         ('lr=10000.0', 'weight_decay=0.5', '>= 1')),
    Case('differentiable', lion(differentiable=True), ValueError, ('differentiable=True',)),
    Case('unknown-keyword', lion(eps=1e-8), TypeError, ('eps=1e-08', "AdamW's epsilon")),
    Case('state-dtype-int', lion(state_dtype=torch.int8), ValueError,
         ('state_dtype=torch.int8',)),
    Case('state-dtype-name', lion(state_dtype='bf17'), ValueError, ("state_dtype='bf17'",)),
    Case('flag-type', lion(maximize='yes'), ValueError, ("maximize='yes'",)),
    Case('fused-and-foreach', lion(fused=True, foreach=True), ValueError,
         ('fused=True', 'foreach=True')),
    Case('max-skips', lion(skip_nonfinite=True, max_consecutive_skips=0), ValueError,
         ('max_consecutive_skips=0',)),
    Case('decoupled-zero-lr', lion(lr=0.0, decoupled_weight_decay=True), ValueError,
         ('initial_lr=0.0', 'decoupled_weight_decay=True')),
    Case('complex-state-dtype',
         lambda ctx, _: Lion([torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))],
                          state_dtype='bfloat16'), ValueError,
         ('state_dtype=torch.bfloat16', 'complex')),
    # -- a step ----------------------------------------------------------------------
    Case('sparse-grad', _sparse, RuntimeError, ('sparse', 'param group 0, parameter 1')),
    Case('param-in-two-groups', _two_groups, ValueError, ('shape (4, 3)', 'group 0', 'group 1')),
    Case('nonfinite-in-a-row', _nonfinite_in_a_row, FloatingPointError,
         ('2 steps in a row', 'max_consecutive_skips=2', 'param group 0, parameter of shape'),
         setup=_guarded_optimizer),
    # -- loading optimizer state -----------------------------------------------------
    Case('state-of-adamw', _load_adamw, ValueError, ("['amsgrad', 'eps']", 'another optimizer')),
    Case('state-shape', _load_shape, ValueError, ('shape (2, 3)', '(4, 3)')),
    Case('state-groups', _load_groups, ValueError, ('2 param groups', 'has 1')),
    Case('zero-without-dist', _zero_without_dist, RuntimeError, ('torch.distributed',
                                                                 'torchrun')),
    # -- configs (check_config, as tools/train.py runs it) ---------------------------
    Case('config-lr', config_case(**{'optim_wrapper.optimizer.lr': -4e-4}), ConfigError,
         ('optim_wrapper.optimizer', 'lr=-0.0004')),
    Case('config-unknown-keyword', config_case(**{'optim_wrapper.optimizer.eps': 1e-8}),
         ConfigError, ('optim_wrapper.optimizer', 'eps=1e-08')),
    Case('config-lr-typo', config_case(**{'optim_wrapper.optimizer.lr': 1e4}), ConfigError,
         ('optim_wrapper.optimizer', 'lr=10000.0', 'lr * weight_decay')),
    Case('config-betas', config_case(**{'optim_wrapper.optimizer.betas': (0.9, 0.99, 0.1)}),
         ConfigError, ('optim_wrapper.optimizer', 'betas=(0.9, 0.99, 0.1)')),
    Case('config-unknown-type', config_case(**{'optim_wrapper.optimizer.type': 'Loin'}),
         ConfigError, ("optim_wrapper.optimizer.type='Loin'", "'Lion'")),
    Case('zero-unknown-type', _zero_unknown_type, ConfigError,
         ("optimizer_type='Loin'", "'Lion'")),
    Case('no-custom-imports', _no_custom_imports, ConfigError,
         ("optim_wrapper.optimizer.type='Lion'", 'custom_imports')),
    Case('decay-mult-without-wd', _decay_mult, ConfigError,
         ('paramwise_cfg.bias_decay_mult=0', 'weight_decay')),
    Case('custom-key-decay-mult-without-wd', _decay_mult_custom_key, ConfigError,
         ("custom_keys['backbone'].decay_mult=0.1", 'weight_decay')),
    Case('accumulative-counts', config_case(**{'optim_wrapper.accumulative_counts': 0}),
         ConfigError, ('optim_wrapper.accumulative_counts=0',)),
    Case('clip-grad', config_case(**{'optim_wrapper.clip_grad.max_norm': -1}), ConfigError,
         ('optim_wrapper.clip_grad.max_norm=-1',)),
    Case('clip-grad-not-dict', config_case(**{'optim_wrapper.clip_grad': 'max_norm=1'}),
         ConfigError, ("optim_wrapper.clip_grad='max_norm=1'",)),
    Case('clip-grad-norm-type',
         config_case(**{'optim_wrapper.clip_grad': dict(max_norm=1, norm_type='l2')}),
         ConfigError, ("optim_wrapper.clip_grad.norm_type='l2'",)),
    Case('paramwise-negative-lr-mult',
         config_case(**{'optim_wrapper.paramwise_cfg.custom_keys':
                        {'backbone': dict(lr_mult=-0.1)}}),
         ConfigError, ("paramwise_cfg.custom_keys['backbone'].lr_mult=-0.1",)),
    Case('guard-twice', _guard_twice, ValueError, ('skip_nonfinite=True',)),
    Case('fused-on-meta', _fused_on_meta, RuntimeError, ('fused=True', 'meta')),
    Case('generate-into-users-folder', _generate_into, FileExistsError,
         ('shapes', 'photo.jpg', 'not generated by mmlion'), setup=_users_shapes_folder),
    Case('foreign-checkpoint-in-work-dir', _save_over, FileExistsError,
         ('epoch_1.pth', 'did not write it'), setup=_foreign_checkpoint),
    Case('missing-ann-file',
         config_case(**{'train_dataloader.dataset.ann_file': 'annotations/nope.json'}),
         ConfigError, ("train_dataloader.dataset.ann_file='annotations/nope.json'",
                       'data/shapes/annotations/nope.json')),
    Case('missing-image-folder',
         config_case(**{'val_dataloader.dataset.data_prefix.img': 'vall/'}), ConfigError,
         ("val_dataloader.dataset.data_prefix.img='vall/'",)),
    Case('resume-missing-file', config_case(resume=True, load_from='work_dirs/none/epoch_9.pth'),
         ConfigError, ("'work_dirs/none/epoch_9.pth'", 'does not exist')),
    Case('resume-truncated', _resume, ConfigError,
         ('epoch_2.pth', 'truncated or corrupt', 'epoch_1.pth'), setup=_truncated),
    Case('resume-corrupt', _resume, ConfigError,
         ('epoch_2.pth', '4096 bytes', 'truncated or corrupt'), setup=_corrupt),
    Case('resume-auto-truncated', _resume_auto_truncated, ConfigError,
         ('last_checkpoint', 'epoch_2.pth', 'truncated or corrupt'),
         setup=_pointer_to_truncated),
    Case('resume-other-optimizer', _resume, ConfigError,
         ('adamw_epoch_1.pth', 'exp_avg_sq', 'load_from='), setup=_other_optimizer_ckpt),
    Case('train-tool-truncated', _train_tool_truncated, ConfigError,
         ('epoch_2.pth', 'truncated or corrupt'), setup=_truncated),
    Case('train-tool-resume-folder', _train_tool_resume_folder, ConfigError,
         ('is a folder', 'epoch_1.pth'), setup=_folder_of_checkpoints),
    Case('load-from-missing', config_case(load_from='work_dirs/none/epoch_9.pth'), ConfigError,
         ('load_from', "'work_dirs/none/epoch_9.pth'", 'does not exist')),
    Case('load-from-truncated', _load_from, ConfigError,
         ('load_from', 'epoch_2.pth', 'truncated or corrupt'), setup=_truncated),
    Case('dist-train-zero-processes', _dist_train_zero, SystemExit, ("GPUS='0'", 'integer >= 1')),
]


def _doc_ids():
    with open(DOC) as f:
        return re.findall(r'^\| `([a-z0-9-]+)` \|', f.read(), flags=re.M)


def test_the_table_is_the_doc():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) >= 25
    assert _doc_ids() == ids


@pytest.mark.parametrize('case', [
    # the tools/train.py rows start a Python process each (about 6 s): not in the fast subset
    pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.id.startswith('train-tool') else [])
    for c in CASES])
def test_bad_input(case, tmp_path, shapes_data):
    ctx = Context(tmp_path)
    prepared = case.setup(ctx) if case.setup else None
    before = ctx.snapshot()
    with pytest.raises(case.error) as info:
        case.run(ctx, prepared)
    message = str(info.value)
    for part in case.says:
        assert part in message, f'{case.id}: {part!r} not in {message!r}'
    # Nothing lost: parameters, optimizer state and the files involved are unchanged.
    params, state, files = before
    params_after, state_after, files_after = ctx.snapshot()
    for p, q in zip(params, params_after):
        assert torch.equal(p, q), case.id
    assert files == {path: files_after[path] for path in files}, case.id
    assert state['state'].keys() == state_after['state'].keys()
    for index, entry in state['state'].items():
        assert torch.equal(entry['exp_avg'], state_after['state'][index]['exp_avg'])
