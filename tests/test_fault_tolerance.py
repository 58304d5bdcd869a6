"""Training that survives faults, end to end with tools/train.py and torchrun:
SIGKILL mid-epoch and resume bitwise (1 and 2 processes), a crash during a checkpoint
write, an injected NaN gradient, and ZeRO-sharded Lion against DDP."""
import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.distributed._shard.sharded_tensor import ShardedTensor

from helpers import DEMO, ROOT, free_port, run_tool, tool_env
pytestmark = pytest.mark.slow

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


def train(config, work_dir, *extra, nproc=1, port=29531, expect_rc=0, pythonpath=()):
    args = ['--work-dir', str(work_dir), *extra]
    if nproc == 1:
        cmd = [sys.executable, 'tools/train.py', config, *args]
        env = {}
    else:  # torchrun reports a killed worker as a failure: expect_rc=None
        cmd = ['bash', 'tools/dist_train.sh', config, str(nproc), *args]
        env = dict(PORT=str(port))
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join([*pythonpath, os.environ.get('PYTHONPATH', '')])
    return run_tool(cmd, timeout=600, env=env, expect_rc=expect_rc, log=f'{work_dir}.log')


def load(path):
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


def kill_and_resume(tmp_path, config, name, nproc=1, port=29531, kill_iter=8,
                    resumed_at='resumed epoch: 1, iter: 5', load_checkpoint=load,
                    checkpoints=('epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth')):
    """Train, SIGKILL after iteration ``kill_iter`` (by default in the middle of epoch
    2), resume from the last checkpoint, finish. ``checkpoints``: the last one written
    before the kill, the next one (never written), the final one. Returns the final
    checkpoint and the resumed run's output."""
    last, next_one, final = checkpoints
    work_dir = tmp_path / name
    killer = f"dict(type='KillAtIterHook', kill_iter={kill_iter})"
    killed_config = config[:-len('.py')] + '_killed.py'
    with open(config) as f, open(killed_config, 'w') as g:
        g.write(f.read().replace('custom_hooks = []', f'custom_hooks = [{killer}]'))
    train(killed_config, work_dir, nproc=nproc, port=port,
          expect_rc=-signal.SIGKILL if nproc == 1 else None)
    with open(work_dir / 'last_checkpoint') as f:
        assert f.read().strip().endswith(last)
    assert not (work_dir / next_one).exists()
    out = train(config, work_dir, '--resume', nproc=nproc, port=port + 1)
    assert resumed_at in out, out[-3000:]
    return load_checkpoint(work_dir / final), out


def test_sigkill_mid_epoch_and_resume_is_bitwise_equal(tmp_path):
    config = write_config(tmp_path, 'toy')
    train(config, tmp_path / 'straight')
    straight = load(tmp_path / 'straight' / 'epoch_3.pth')
    resumed, out = kill_and_resume(tmp_path, config, 'resumed')
    assert 'restored the partial gradient of an accumulation window' in out
    assert_bitwise_equal(straight, resumed, 'single process')
    assert straight['meta']['iter'] == resumed['meta']['iter'] == 15
    # What made it exact is in the checkpoint: RNG states and the partial gradient.
    extra = load(tmp_path / 'resumed' / 'epoch_3.pth')['mmlion_resume']
    assert extra['world_size'] == 1 and set(extra['rng'][0]) >= {'python', 'numpy', 'torch'}

    # The control: MMEngine's own CheckpointHook resumes, but not bitwise.
    plain = write_config(tmp_path, 'plain', checkpoint_hook='CheckpointHook')
    plain_resumed, _ = kill_and_resume(tmp_path, plain, 'plain_resumed')
    with pytest.raises(AssertionError):
        assert_bitwise_equal(straight, plain_resumed)


def test_rtmdet_demo_sigkill_and_resume_is_bitwise_equal(tmp_path, shapes_data):
    """The same with a real MMDetection detector: the demo's RTMDet-tiny on Shapes
    (random flips, BN, CocoMetric validation and save_best every epoch), with
    accumulation windows of 4 over 6-iteration epochs."""
    config = tmp_path / 'rtmdet.py'
    config.write_text(
        f"_base_ = '{DEMO}'\n"
        "custom_imports = dict(imports=['mmlion', '_fault_support'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = []\n"
        "train_dataloader = dict(batch_size=8, dataset=dict(indices=48))\n"
        "val_dataloader = dict(dataset=dict(indices=16))\n"
        "train_cfg = dict(max_epochs=3, val_interval=1)\n"
        "optim_wrapper = dict(accumulative_counts=4)\n"
        "default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))\n")
    train(str(config), tmp_path / 'straight')
    straight = load(tmp_path / 'straight' / 'epoch_3.pth')
    resumed, out = kill_and_resume(tmp_path, str(config), 'resumed', kill_iter=8,
                                   resumed_at='resumed epoch: 1, iter: 6')
    assert 'restored the partial gradient of an accumulation window' in out
    assert_bitwise_equal(straight, resumed, 'RTMDet-tiny')


@pytest.fixture(scope='module')
def ddp_straight(tmp_path_factory):
    """An uninterrupted two-process DDP run of the toy config: its final checkpoint."""
    tmp_path = tmp_path_factory.mktemp('ddp')
    train(write_config(tmp_path, 'ddp', nproc=2), tmp_path / 'ddp_straight', nproc=2,
          port=free_port())
    return load(tmp_path / 'ddp_straight' / 'epoch_3.pth')


# mmseg's way of training: IterBasedTrainLoop over an InfiniteSampler, checkpoints and
# schedules by iteration. 12 iterations, windows of 3, checkpoints at 4 and 8 (both
# inside a window), validation at 5 and 10 (between checkpoints).
ITER_BASED = {
    "sampler=dict(type='DefaultSampler', shuffle=True)":
        "sampler=dict(type='InfiniteSampler', shuffle=True)",
    "train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)":
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=12, val_interval=5)",
    "dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=3, eta_min=1e-5)":
        "dict(type='CosineAnnealingLR', by_epoch=False, begin=4, end=12, eta_min=1e-5)",
    "interval=1, max_keep_ckpts=2)": "interval=4, by_epoch=False, max_keep_ckpts=2)",
    "logger=dict(type='LoggerHook', interval=1)":
        "logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False)",
}


def iteration_based(config, name):
    path = config[:-len('.py')] + f'_{name}.py'
    with open(config) as f:
        text = f.read()
    for old, new in ITER_BASED.items():
        assert old in text, old
        text = text.replace(old, new)
    with open(path, 'w') as f:
        f.write(text)
    return path


@pytest.mark.parametrize('checkpoint_hook', ['mmlion.ResumableCheckpointHook',
                                             'CheckpointHook'])
def test_iteration_based_sigkill_and_resume_is_bitwise_equal(tmp_path, checkpoint_hook):
    """IterBasedTrainLoop, killed at iteration 6 and resumed from the checkpoint at 4
    (inside an accumulation window): mmlion's hook ends bit for bit where the
    uninterrupted run ends, and skips the trained batches without loading them;
    MMEngine's CheckpointHook (the control) does not end there."""
    config = iteration_based(write_config(tmp_path, 'toy', checkpoint_hook=checkpoint_hook),
                             'iter')
    train(config, tmp_path / 'straight')
    straight = load(tmp_path / 'straight' / 'iter_12.pth')
    resumed, out = kill_and_resume(tmp_path, config, 'resumed', kill_iter=6,
                                   resumed_at='resumed epoch: 0, iter: 4',
                                   checkpoints=('iter_4.pth', 'iter_8.pth', 'iter_12.pth'))
    assert straight['meta']['iter'] == resumed['meta']['iter'] == 12
    if checkpoint_hook == 'CheckpointHook':
        with pytest.raises(AssertionError):
            assert_bitwise_equal(straight, resumed)
        return
    assert 'restored the partial gradient of an accumulation window' in out
    assert 'Reach the end of the dataloader' not in out
    assert_bitwise_equal(straight, resumed, 'iteration-based')


def test_two_process_ddp_and_zero_resume_bitwise_and_match(tmp_path, ddp_straight):
    ddp = write_config(tmp_path, 'ddp', nproc=2)
    straight = ddp_straight
    resumed, out = kill_and_resume(tmp_path, ddp, 'ddp_resumed', nproc=2, port=29543)
    assert_bitwise_equal(straight, resumed, 'DDP')
    extra = resumed['mmlion_resume']
    assert extra['world_size'] == 2 and len(extra['rng']) == 2  # one state per rank

    # ZeRO-sharded Lion, guarded by the wrapper, killed and resumed, ends where DDP with
    # plain Lion ends.
    zero = write_config(tmp_path, 'zero', nproc=2, optimizer=ZERO,
                        wrapper='mmlion.GuardedOptimWrapper')
    zero_resumed, out = kill_and_resume(tmp_path, zero, 'zero_resumed', nproc=2, port=29545)
    assert 'ZeroRedundancyOptimizer' in zero_resumed['meta']['cfg']
    assert_bitwise_equal(straight, zero_resumed, 'ZeRO vs DDP')


def test_elastic_restart_resumes_bitwise(tmp_path, ddp_straight):
    """torchrun restarts the group after one rank is SIGKILLed mid-epoch
    (MAX_RESTARTS=1); tools/train.py resumes from the last checkpoint and ends where
    an uninterrupted run ends, bit for bit."""
    killer = "[dict(type='KillAtIterHook', kill_iter=8, rank=1, first_attempt_only=True)]"
    config = write_config(tmp_path, 'elastic', nproc=2, custom_hooks=killer)
    work_dir = tmp_path / 'elastic'
    out = run_tool(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work_dir)],
                   timeout=600, env=dict(PORT=str(free_port()), MAX_RESTARTS='1'),
                   log=f'{work_dir}.log')
    assert 'torchrun restart 1: resuming from the last checkpoint' in out, out[-3000:]
    assert 'resumed epoch: 1, iter: 5' in out, out[-3000:]
    assert_bitwise_equal(ddp_straight, load(work_dir / 'epoch_3.pth'), 'elastic restart')


def test_two_nodes_equal_one_node_with_two_processes(tmp_path, ddp_straight):
    """Two torchrun "nodes" of one process each (--nnodes 2, node ranks 0 and 1, one
    rendezvous) train exactly as one node with two processes."""
    config = write_config(tmp_path, 'nodes', nproc=2)
    work_dir, port = tmp_path / 'nodes', str(free_port())
    nodes = [subprocess.Popen(
        ['bash', 'tools/dist_train.sh', config, '1', '--work-dir', str(work_dir)], cwd=ROOT,
        # torchrun gives each of 2 local processes one thread, a lone one all cores:
        # the same thread count keeps the reduction order, so the bits, the same.
        env=tool_env(dict(NNODES='2', NODE_RANK=str(rank), PORT=port, OMP_NUM_THREADS='1')),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outs = [node.communicate(timeout=600)[0] for node in nodes]
    for node, out in zip(nodes, outs):
        assert node.returncode == 0, out[-3000:]
    assert_bitwise_equal(ddp_straight, load(work_dir / 'epoch_3.pth'), 'two nodes')


FSDP = """
runner_type = 'FlexibleRunner'
strategy = dict(type='FSDPStrategy', state_dict_cfg='{state_dict_cfg}',
                model_wrapper=dict(use_orig_params=True))
"""


def load_fsdp_checkpoint(path):
    """A full state dict checkpoint is one file. A sharded one ('local') is a folder of
    ``rank{i}.pth``, each with its rank's 1-D pieces of every parameter and of its
    ``exp_avg`` (as ShardedTensors): joined here, rank 0's piece first, into one
    checkpoint of flat tensors keyed by name; buffers are whole on every rank."""
    if not path.is_dir():
        return load(path)
    with _sharded_tensors_readable_in_this_process():
        ranks = [load(path / f'rank{rank}.pth') for rank in (0, 1)]
    params = ranks[0]['optimizer']['state'].keys()

    def joined(pieces):
        pieces = [torch.cat([s.tensor.flatten() for s in p.local_shards()])
                  if isinstance(p, ShardedTensor) else p.flatten() for p in pieces]
        return torch.cat(pieces)

    state_dict = {name: joined([r['state_dict'][name] for r in ranks]) if name in params
                  else ranks[0]['state_dict'][name]
                  for name in ranks[0]['state_dict'] if name != '_flat_param'}
    exp_avg = {name: dict(exp_avg=joined([r['optimizer']['state'][name]['exp_avg']
                                          for r in ranks])) for name in params}
    return dict(state_dict=state_dict, optimizer=dict(state=exp_avg))


@contextlib.contextmanager
def _sharded_tensors_readable_in_this_process():
    """ShardedTensor refuses to unpickle outside the process group (and rank) that saved
    it; the test reads its local shards and metadata only."""
    original = ShardedTensor.__setstate__

    def keep_shards(self, state):
        self._local_shards, self._metadata = state[0], state[1]

    ShardedTensor.__setstate__ = keep_shards
    try:
        yield
    finally:
        ShardedTensor.__setstate__ = original


@pytest.mark.parametrize('state_dict_cfg', ['full', 'local'])
def test_mmengine_fsdp_strategy_trains_like_ddp_and_resumes_bitwise(tmp_path, ddp_straight,
                                                                    state_dict_cfg):
    """An upstream-style FlexibleRunner + FSDPStrategy config, unedited, through
    tools/dist_train.sh on CPU: it ends where DDP ends (within fp32 rounding: FSDP
    reduce-scatters where DDP all-reduces), and killed and resumed (full or sharded
    checkpoints, the optimizer state reloaded through FSDP) it ends bit for bit where
    it ends uninterrupted."""
    config = write_config(tmp_path, 'fsdp', nproc=2)
    with open(config, 'a') as f:
        f.write(FSDP.format(state_dict_cfg=state_dict_cfg))
    train(config, tmp_path / 'fsdp_straight', nproc=2, port=free_port())
    straight = load_fsdp_checkpoint(tmp_path / 'fsdp_straight' / 'epoch_3.pth')
    assert straight['state_dict'].keys() == ddp_straight['state_dict'].keys()
    for name, value in ddp_straight['state_dict'].items():
        torch.testing.assert_close(straight['state_dict'][name].view(value.shape), value,
                                   rtol=1e-5, atol=1e-6)
    resumed, _ = kill_and_resume(tmp_path, config, 'fsdp_resumed', nproc=2, port=free_port(),
                                 load_checkpoint=load_fsdp_checkpoint)
    assert_bitwise_equal(straight, resumed, 'FSDP resumed')


DEEPSPEED = """
runner_type = 'FlexibleRunner'
strategy = dict(type='DeepSpeedStrategy', zero_optimization=dict(stage=2),
                gradient_clipping=1.0, gradient_accumulation_steps=3,
                train_micro_batch_size_per_gpu=4)
optim_wrapper = dict(type='DeepSpeedOptimWrapper',
                     optimizer=dict(type='Lion', lr=1e-3, weight_decay=0.5))
"""


def deepspeed_weights(checkpoint_dir):
    """The model weights of a deepspeed checkpoint (a folder, one file per rank)."""
    return load(checkpoint_dir / 'mp_rank_00_model_states.pt')['module']


def test_deepspeed_zero2_through_mmengine_matches_ddp_and_resumes(tmp_path, ddp_straight):
    """MMEngine's DeepSpeedStrategy (ZeRO-2 and ZeRO-1, Lion as deepspeed's client
    optimizer) on 2 CPU processes, with the toy's clipping and accumulation stated in
    deepspeed's terms, ends bit for bit where DDP ends; and resumes bit for bit."""
    config = write_config(tmp_path, 'deepspeed', nproc=2)
    with open(config, 'a') as f:
        f.write(DEEPSPEED)
    out = train(config, tmp_path / 'ds_straight', nproc=2, port=free_port())
    straight = deepspeed_weights(tmp_path / 'ds_straight' / 'epoch_3.pth')
    # max_keep_ckpts=2 rotates deepspeed's checkpoint folders too, once mmlion wrote them.
    kept = sorted(p.name for p in (tmp_path / 'ds_straight').glob('epoch_*.pth'))
    assert kept == ['epoch_2.pth', 'epoch_3.pth'] and 'kept the folder' not in out, kept
    for name, value in ddp_straight['state_dict'].items():
        assert torch.equal(straight[name], value), name
    # ZeRO-1 (the state sharded, the gradients not) ends there too.
    train(config, tmp_path / 'ds_stage1', '--cfg-options', 'strategy.zero_optimization.stage=1',
          nproc=2, port=free_port())
    stage1 = deepspeed_weights(tmp_path / 'ds_stage1' / 'epoch_3.pth')
    for name, value in ddp_straight['state_dict'].items():
        assert torch.equal(stage1[name], value), f'ZeRO-1: {name}'

    # Killed mid-epoch and resumed, it ends bit for bit where it ends uninterrupted
    # (RNG states restored by mmlion's hook), when its accumulation windows end with
    # the epochs: deepspeed keeps no partial window in a checkpoint.
    windows_of_an_epoch = config[:-len('.py')] + '_gas5.py'
    with open(config) as f, open(windows_of_an_epoch, 'w') as g:
        g.write(f.read().replace('gradient_accumulation_steps=3', 'gradient_accumulation_steps=5'))
    train(windows_of_an_epoch, tmp_path / 'gas5_straight', nproc=2, port=free_port())
    uninterrupted = deepspeed_weights(tmp_path / 'gas5_straight' / 'epoch_3.pth')
    resumed, out = kill_and_resume(tmp_path, windows_of_an_epoch, 'gas5_resumed', nproc=2,
                                   port=free_port(), load_checkpoint=deepspeed_weights)
    assert 'holds no RNG states' not in out
    for name, value in uninterrupted.items():
        assert torch.equal(resumed[name], value), name


# From the end of epoch 1 on, any write that takes a file past 64 KiB kills the
# process with SIGXFSZ (Python ignores that signal; the hook restores its default):
# a crash in the middle of writing the epoch-2 checkpoint, which is ~1 MB.
CRASH_ON_SAVE = textwrap.dedent("""
    import resource
    import signal
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    @HOOKS.register_module(force=True)
    class CrashDuringSecondSaveHook(Hook):
        priority = 'LOWEST'  # after the checkpoint hook has written epoch 1
        def after_train_epoch(self, runner):
            if runner.epoch == 0:
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
                resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
""")


@pytest.mark.parametrize('hook, survives', [('mmlion.ResumableCheckpointHook', True),
                                            ('CheckpointHook', False)])
def test_crash_while_writing_a_checkpoint(tmp_path, hook, survives):
    (tmp_path / '_crash_on_save.py').write_text(CRASH_ON_SAVE)
    config = write_config(tmp_path, 'crash', checkpoint_hook=hook,
                          custom_hooks="[dict(type='CrashDuringSecondSaveHook')]")
    config_text = open(config).read().replace("'_fault_support']", "'_fault_support', "
                                              "'_crash_on_save']")
    open(config, 'w').write(config_text)
    # The toy model is small; a wide hidden layer makes its checkpoint ~1 MB.
    work_dir = tmp_path / 'crash_run'
    train(config, work_dir, '--cfg-options', 'model.hidden=4096',
          expect_rc=-signal.SIGXFSZ, pythonpath=[str(tmp_path)])
    with open(work_dir / 'last_checkpoint') as f:
        latest = f.read().strip()
    assert latest.endswith('epoch_1.pth')
    assert load(latest)['meta']['epoch'] == 1  # complete, loads
    second = work_dir / 'epoch_2.pth'
    if survives:
        assert not second.exists()  # only a temporary file was cut short
    else:
        # MMEngine's plain write leaves a truncated epoch_2.pth behind.
        assert second.exists()
        with pytest.raises(Exception):
            load(second)


GUARDED_ADAMW = "dict(type='AdamW', lr=1e-3)"


@pytest.mark.parametrize('name, optimizer, wrapper, clip', [
    ('lion', LION, 'OptimWrapper', 'dict(max_norm=1.0)'),
    ('adamw_wrapper_clip', GUARDED_ADAMW, 'mmlion.GuardedOptimWrapper', 'dict(max_norm=1.0)'),
    ('adamw_wrapper', GUARDED_ADAMW, 'mmlion.GuardedOptimWrapper', 'None'),
])
def test_nan_gradient_is_skipped_and_logged_under_the_runner(tmp_path, name, optimizer,
                                                             wrapper, clip):
    """Lion(skip_nonfinite) and GuardedOptimWrapper (here guarding AdamW, with the
    clipping norm and without clipping) under the Runner, with accumulation."""
    config = write_config(tmp_path, name, optimizer=optimizer, wrapper=wrapper,
                          custom_hooks="[dict(type='PoisonGradHook', poison_iter=6)]")
    with open(config) as f:
        text = f.read()
    with open(config, 'w') as f:
        f.write(text.replace('clip_grad=dict(max_norm=1.0)', f'clip_grad={clip}'))
    # Iteration 6 ends an accumulation window of 3, so it is a step of its own.
    out = train(config, tmp_path / name)
    before = load(tmp_path / name / 'before_poison.pth')
    after = load(tmp_path / name / 'after_poison.pth')
    for key, value in before['params'].items():
        assert torch.equal(value, after['params'][key]), (name, key)
    state_before = before['optimizer']['state']
    for index, entry in after['optimizer']['state'].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, state_before[index][key]), (name, index, key)
    assert 'non-finite gradient (NaN or Inf)' in out and '1 in a row, 1 in total' in out
    final = load(tmp_path / name / 'epoch_3.pth')
    assert all(v.isfinite().all() for v in final['state_dict'].values())
    assert final['optimizer']['nonfinite'] == dict(skipped=1, consecutive=0)
    if wrapper != 'OptimWrapper':
        assert 'first in fc1.weight' in out  # the wrapper names the parameter
        assert 'nonfinite_skips' in out
