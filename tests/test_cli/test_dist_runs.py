"""Several processes through tools/dist_train.sh (mmlion.cli.dist on a CPU-only
machine): DDP and ZeRO-sharded Lion resumed bit for bit and equal, an elastic restart,
and two torchrun nodes equal to one node of two processes."""
import subprocess

import pytest

from helpers import (ROOT, ZERO, assert_bitwise_equal, free_port, kill_and_resume, load,
                     run_tool, tool_env, train, write_config)
from mmlion.engine import lr_scaling

pytestmark = pytest.mark.slow


def test_two_process_ddp_and_zero_resume_bitwise_and_match(tmp_path, ddp_straight):
    ddp = write_config(tmp_path, 'ddp', nproc=2)
    straight = ddp_straight
    resumed, out = kill_and_resume(tmp_path, ddp, 'ddp_resumed', nproc=2)
    assert_bitwise_equal(straight, resumed, 'DDP')
    extra = resumed['mmlion_resume']
    assert extra['world_size'] == 2 and len(extra['rng']) == 2  # one state per rank

    # ZeRO-sharded Lion, guarded by the wrapper, killed and resumed, ends where DDP with
    # plain Lion ends; saved by MMEngine's own CheckpointHook, with mmlion's one-job
    # hooks beside it (RNG states, partial gradients, ZeRO's shards gathered).
    zero = write_config(tmp_path, 'zero', nproc=2, optimizer=ZERO,
                        wrapper='mmlion.GuardedOptimWrapper', checkpoint_hook='CheckpointHook',
                        custom_hooks="[dict(type='mmlion.RngStateHook'), "
                                     "dict(type='mmlion.PartialGradientHook'), "
                                     "dict(type='mmlion.ShardedOptimizerHook')]")
    zero_resumed, out = kill_and_resume(tmp_path, zero, 'zero_resumed', nproc=2)
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


def test_auto_scale_lr_counts_processes_and_accumulation(tmp_path):
    """tools/dist_train.sh CONFIG 2 --auto-scale-lr: Lion's lr scales by its rule from 8
    to the effective batch of 2 processes x 4 per process x 3 accumulated steps."""
    config = write_config(tmp_path, 'scaled', nproc=2)
    work_dir = tmp_path / 'scaled'
    out = train(config, work_dir, '--auto-scale-lr', '--cfg-options', 'train_cfg.max_epochs=1',
                'auto_scale_lr.base_batch_size=8', nproc=2, port=free_port())
    rule = lr_scaling.LION_DEFAULT_RULE
    assert ("effective batch 24 = 2 process(es) x 4 per process x 3 accumulated step(s), "
            f'tuned for 8; rule {lr_scaling.rule_label(rule)}') in out, out[-3000:]
    groups = load(work_dir / 'epoch_1.pth')['optimizer']['param_groups']
    factor = (24 / 8) ** lr_scaling.rule_exponent(rule)
    assert [g['initial_lr'] for g in groups] == [pytest.approx(1e-3 * factor)] * len(groups)
