"""What the tests share: the repository's paths, the one subprocess runner, loading a
tool script as a module, the demo's Shapes data, and the toy run (one config for
in-process Runners and real tools/train.py and torchrun runs)."""
import importlib.util
import os
import os.path as osp
import pathlib
import signal
import socket
import subprocess
import sys
from typing import Dict, List, Optional

import torch

from mmlion.utils import versions

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TESTS = osp.join(ROOT, 'tests')
DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py')
ZERO_DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_2xb8-lion-zero-24e_shapes.py')
FSDP_DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_2xb8-lion-fsdp-24e_shapes.py')
DEEPSPEED_DEMO = osp.join(ROOT, 'configs/lion/demo/rtmdet_tiny_2xb8-lion-deepspeed-24e_shapes.py')
VIT_DEMO = osp.join(ROOT, 'configs/lion/demo/vit-tiny-p4_1xb32-lion-6e_shapes-crops.py')
SEGFORMER_DEMO = osp.join(ROOT, 'configs/lion/demo/segformer-mit-b0_1xb8-lion-400i_shapes-masks.py')
SHAPES = osp.join(ROOT, 'data', 'shapes')
# Why a feature cannot run on the installed versions (None where it can): the tests
# that need it skip with this reason, the one mmlion's own refusal gives.
FSDP2_UNSUPPORTED = versions.unsupported('FSDP2 (fully_shard) and DTensor parameters', 'torch',
                                         versions.torch_version(),
                                         versions.SUPPORTED['fsdp2_torch'])
# On PYTHONPATH, it makes torchvision importable for mmpretrain (see its sitecustomize.py).
TORCHVISION_SHIM = osp.join(TESTS, 'torchvision_cpu')


def exact_bf16_step(n: int, param_dtype: torch.dtype, lr: float, beta1: float, beta2: float,
                    decay: float):
    """Inputs (param, grad with one NaN, bf16 momentum) and the step's exact outcome:
    fp32 arithmetic, each result rounded once to its storage dtype as torch's ``.to``
    rounds (to nearest, ties to even), no fused multiply-add. Computed elementwise, so
    a kernel must match it bit for bit."""
    gen = torch.Generator().manual_seed(0)
    p0 = torch.randn(n, generator=gen).to(param_dtype)
    m0 = torch.randn(n, generator=gen).to(torch.bfloat16)
    g = torch.randn(n, generator=gen).to(param_dtype)
    g[7] = float('nan')
    f32 = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    update = torch.sign(m0.float() * f32(beta1) + g.float() * f32(1 - beta1))
    expected_p = (p0.float() * f32(decay) + f32(-lr) * update).to(param_dtype)
    expected_m = (m0.float() * f32(beta2) + g.float() * f32(1 - beta2)).to(torch.bfloat16)
    return (p0, g, m0), (expected_p, expected_m)


def tool_env(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment a tool runs in: this checkout and tests/ importable (the test
    models and hooks that configs load with custom_imports)."""
    env = dict(os.environ, **(env or {}))
    env['PYTHONPATH'] = os.pathsep.join([ROOT, TESTS, env.get('PYTHONPATH', '')])
    env.setdefault('PYTHON', sys.executable)  # what tools/dist_*.sh run
    return env


def run_tool(cmd: List[str], timeout: int = 900, env: Optional[Dict[str, str]] = None,
             expect_rc: Optional[int] = 0, log: Optional[str] = None, cwd: str = ROOT,
             checkout: bool = True, with_stderr: bool = True) -> str:
    """Run ``cmd`` (from the repository root unless ``cwd``); check its exit status
    (``expect_rc=None``: any failure) and return stdout + stderr (``with_stderr=False``:
    stdout alone). ``checkout=False`` runs it in ``env`` as given, without this checkout
    and tests/ on the path (an installed copy's test). ``log`` keeps the whole output.
    The one subprocess runner of the tests."""
    full_env = tool_env(env) if checkout else dict(os.environ, **(env or {}))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=full_env)
    out = proc.stdout + proc.stderr
    if log is not None:
        with open(log, 'a') as f:
            f.write(f'$ {" ".join(map(str, cmd))}\n{out}\n')
    if expect_rc is None:
        assert proc.returncode != 0, f'{cmd} should have failed\n{out[-3000:]}'
    else:
        first_error = max(out.find('Traceback'), 0)
        assert proc.returncode == expect_rc, \
            f'{cmd} (rc {proc.returncode})\n{out[first_error:][:3000]}\n...\n{out[-3000:]}'
    return out if with_stderr else proc.stdout


def python_tool(script: str, *args, **kwargs) -> str:
    """:func:`run_tool` for ``python tools/...``."""
    return run_tool([sys.executable, script, *map(str, args)], **kwargs)


_HOLDER = ('import sys, time; from mmlion.cli import hold_work_dir; '
           'hold_work_dir(sys.argv[1], "none"); print("held", flush=True); time.sleep(120)')


def hold_in_subprocess(work_dir) -> subprocess.Popen:
    """A process that holds ``work_dir``'s run lock as tools/train.py takes it, and
    sleeps; kill it when done."""
    proc = subprocess.Popen([sys.executable, '-c', _HOLDER, str(work_dir)],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:  # deepspeed, where installed, logs a line at import
        if line.strip() == 'held':
            return proc
    raise AssertionError(f'the holder exited with {proc.wait()}')


def load_tool(relative: str):
    """A script under tools/ as a module (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        osp.basename(relative)[:-3].replace('-', '_'), osp.join(ROOT, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_shapes(root: str = SHAPES) -> str:
    """The demo's Shapes data, as tools/run_main.sh makes it."""
    return load_tool('tools/dataset_converters/generate_shapes.py').generate(root, quiet=True)


def free_port() -> int:
    """A TCP port no one listens on now, for a process group's rendezvous."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def png_size(path: str):
    """(width, height) of a PNG a tool wrote, which must hold a real figure."""
    import matplotlib.image
    assert osp.getsize(path) > 5_000
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


def torchvision_or_skip() -> None:
    """Make torchvision importable for an in-process test that builds mmpretrain models
    (through the tests' shim, see tests/torchvision_cpu), or skip it, saying why."""
    import pytest
    if not load_tool(osp.join(TORCHVISION_SHIM, 'sitecustomize.py')).install():
        pytest.skip('mmpretrain needs torchvision, which is not importable here (and '
                    'tools/install.sh tests puts no CPU copy in the venv)')


# -- the toy run: one config for in-process Runners and real tools/train.py runs ------
# 5 iterations per epoch per rank, accumulation windows of 3: the checkpoint at the
# end of epoch 1 (iteration 5) falls inside a window. Lion guarded against NaN,
# clipping, warmup by iteration and cosine by epoch, validation each epoch.
TOY = """
custom_imports = dict(imports=['mmlion', '_fault_support'], allow_failed_imports=False)
default_scope = 'mmengine'
model = dict(type='NoisyToyModel')
train_dataloader = dict(
    batch_size=4, num_workers=0, collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='NoisyToyDataset', size={size}))
val_dataloader = dict(
    batch_size=4, num_workers=0, collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='NoisyToyDataset', size=8, augment=False))
val_evaluator = dict(type='ToyAccuracy')
val_cfg = dict()
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
optim_wrapper = dict(
    type='{wrapper}', accumulative_counts=3, clip_grad=dict(max_norm=1.0),
    optimizer={optimizer})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=3, eta_min=1e-5)]
default_hooks = dict(
    checkpoint=dict(type='{checkpoint_hook}', interval=1, max_keep_ckpts=2),
    logger=dict(type='LoggerHook', interval=1))
custom_hooks = {custom_hooks}
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
"""
LION = "dict(type='Lion', lr=1e-3, weight_decay=0.5, skip_nonfinite=True)"
ZERO = ("dict(type='mmlion.ZeroRedundancyOptimizer', optimizer_type='Lion', lr=1e-3, "
        "weight_decay=0.5)")


def write_config(tmp_path, name, nproc=1, optimizer=LION, wrapper='OptimWrapper',
                 checkpoint_hook='mmlion.ResumableCheckpointHook', custom_hooks='[]'):
    path = tmp_path / f'{name}.py'
    path.write_text(TOY.format(size=20 * nproc, optimizer=optimizer, wrapper=wrapper,
                               checkpoint_hook=checkpoint_hook, custom_hooks=custom_hooks))
    return str(path)


def train(config, work_dir, *extra, nproc=1, port=None, expect_rc=0, pythonpath=()):
    """tools/train.py, or tools/dist_train.sh with ``nproc`` processes rendezvousing on
    ``port`` (a free one by default)."""
    args = ['--work-dir', str(work_dir), *extra]
    if nproc == 1:
        cmd = [sys.executable, 'tools/train.py', config, *args]
        env = {}
    else:  # torchrun reports a killed worker as a failure: expect_rc=None
        cmd = ['bash', 'tools/dist_train.sh', config, str(nproc), *args]
        env = dict(PORT=str(port or free_port()))
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join([*pythonpath, os.environ.get('PYTHONPATH', '')])
    return run_tool(cmd, timeout=600, env=env, expect_rc=expect_rc, log=f'{work_dir}.log')


def load(path):
    """A checkpoint (or anything torch saved), whole, on the CPU."""
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_bitwise_equal(a, b, where=''):
    """Model weights and buffers, and every optimizer state tensor, bit for bit."""
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for name, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][name]), f'{where}: {name}'
    state_a, state_b = a['optimizer']['state'], b['optimizer']['state']
    assert state_a.keys() == state_b.keys() and len(state_a) > 0
    for index in state_a:
        assert torch.equal(state_a[index]['exp_avg'], state_b[index]['exp_avg']), \
            f'{where}: exp_avg of parameter {index}'


def kill_and_resume(tmp_path, config, name, nproc=1, port=None, kill_iter=8,
                    resumed_at='resumed epoch: 1, iter: 5', load_checkpoint=load,
                    checkpoints=('epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth')):
    """Train, SIGKILL after iteration ``kill_iter`` (by default in the middle of epoch
    2), resume from the last checkpoint, finish. ``checkpoints``: the last one written
    before the kill, the next one (never written), the final one. Each run rendezvouses
    on a port found free just before it (not the killed run's neighbour, which its own
    connections may still hold). Returns the final checkpoint and the resumed run's
    output."""
    last, next_one, final = checkpoints
    work_dir = tmp_path / name
    killer = f"dict(type='KillAtIterHook', kill_iter={kill_iter})"
    killed_config = config[:-len('.py')] + '_killed.py'
    with open(config) as f, open(killed_config, 'w') as g:
        text = f.read()
        assert text.count('custom_hooks = [') == 1, config
        g.write(text.replace('custom_hooks = [', f'custom_hooks = [{killer}, '))
    train(killed_config, work_dir, nproc=nproc, port=port,
          expect_rc=-signal.SIGKILL if nproc == 1 else None)
    with open(work_dir / 'last_checkpoint') as f:
        assert f.read().strip().endswith(last)
    assert not (work_dir / next_one).exists()
    out = train(config, work_dir, '--resume', nproc=nproc)
    assert resumed_at in out, out[-3000:]
    return load_checkpoint(work_dir / final), out


def toy_checkpoint(folder, **changes) -> str:
    """``folder/epoch_1.pth``: a checkpoint of the toy run before any step (model, Lion
    state, meta), saved by a real Runner, with ``changes`` applied to its state_dict
    (name -> tensor, or None to drop it)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runner = toy_runner(folder / 'saved')
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.save_checkpoint(str(folder), 'epoch_1.pth', save_param_scheduler=False)
    path = folder / 'epoch_1.pth'
    checkpoint = load(path)
    for name, value in changes.items():
        if value is None:
            checkpoint['state_dict'].pop(name)
        else:
            checkpoint['state_dict'][name] = value
    torch.save(checkpoint, path)
    return str(path)


def toy_runner(work_dir, **cfg_options):
    """A real MMEngine Runner built in this process from the toy config (one process,
    no accumulation, no validation unless ``cfg_options`` say otherwise)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    path = write_config(pathlib.Path(work_dir).parent, f'{pathlib.Path(work_dir).name}_cfg')
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(dict({'optim_wrapper.accumulative_counts': 1}, **cfg_options))
    cfg.work_dir = str(work_dir)
    return Runner.from_cfg(cfg)
