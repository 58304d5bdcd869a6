"""tools/train.py, tools/test.py and tools/dist_train.sh, run for real on the demo
config and the Shapes data (end to end, in subprocesses)."""
import glob
import hashlib
import json
import os
import os.path as osp
import re
import sys

import pytest
import torch

from helpers import (DEEPSPEED_DEMO, DEMO, FSDP_DEMO, SEGFORMER_DEMO, TORCHVISION_SHIM,
                     VIT_DEMO, ZERO_DEMO, free_port, generate_shapes, python_tool, run_tool)

pytestmark = pytest.mark.slow


def run(cmd, timeout=900, env=None):
    return run_tool(cmd, timeout=timeout, env=env)


def assert_paramwise_table_shows_norms_undecayed(out):
    """tools/train.py logs what paramwise_cfg did (ConfigCheckHook): the recipes'
    norms get lr x 1 and decay x 0."""
    assert 'paramwise_cfg as applied' in out, out[-3000:]
    assert re.search(r'\n\s*norm\s+\d+\s+1\s+0\s', out), out[-3000:]


def scalars(work_dir):
    (path,) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_dist_train_two_cpu_processes_zero_sharded(tmp_path, shapes_data):
    """The ZeRO config on 2 CPU processes: the replicas stay identical, and the
    checkpoint (gathered from both shards) holds Lion's state for every parameter."""
    work_dir = str(tmp_path / 'dist')
    config = tmp_path / 'dist_config.py'
    config.write_text(
        f"_base_ = '{ZERO_DEMO}'\n"
        "custom_imports = dict(imports=['mmlion', '_rank_params_hook'])\n"
        "custom_hooks = [dict(type='SaveRankParamsHook')]\n")
    out = run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', work_dir,
               '--cfg-options', 'train_dataloader.dataset.indices=32',
               'train_dataloader.batch_size=4', 'train_cfg.max_epochs=2',
               'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1'],
              env=dict(PORT=str(free_port())))
    assert 'Distributed training is not used' not in out
    assert 'SyncBN in the model config replaced' not in out  # the demo asks for BN
    assert 'Distributed training: True' in out and 'GPU number: 2' in out, out[-3000:]
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    rank0 = torch.load(osp.join(work_dir, 'params_rank0.pth'))
    rank1 = torch.load(osp.join(work_dir, 'params_rank1.pth'))
    assert rank0.keys() == rank1.keys() and len(rank0) > 100
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    checkpoint = torch.load(osp.join(work_dir, 'epoch_2.pth'), weights_only=False)
    for name, value in rank0.items():
        assert torch.equal(checkpoint['state_dict'][name], value), name
    optimizer = checkpoint['optimizer']
    n_params = sum(len(g['params']) for g in optimizer['param_groups'])
    assert n_params == len(rank0)
    assert len(optimizer['state']) == n_params
    assert all(set(s) == {'exp_avg'} for s in optimizer['state'].values())
    assert 'mmlion.ZeroRedundancyOptimizer' in checkpoint['meta']['cfg']


@pytest.mark.parametrize('config, checkpoint_file', [
    (FSDP_DEMO, 'epoch_1.pth'), (DEEPSPEED_DEMO, 'epoch_1.pth/mp_rank_00_model_states.pt')],
    ids=['fsdp', 'deepspeed'])
def test_dist_train_rtmdet_under_flexible_runner(tmp_path, shapes_data, config,
                                                 checkpoint_file):
    """The FSDP and DeepSpeed demo configs, unedited, on 2 CPU processes: each trains an
    epoch, validates with MMDetection's CocoMetric and saves a checkpoint."""
    work_dir = tmp_path / 'run'
    out = run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work_dir),
               '--cfg-options', 'train_dataloader.dataset.indices=32',
               'train_dataloader.batch_size=4', 'train_cfg.max_epochs=1',
               'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1'],
              env=dict(PORT=str(free_port())))
    assert 'Epoch(train) [1][4/4]' in out and 'Evaluating bbox' in out, out[-3000:]
    checkpoint = torch.load(work_dir / checkpoint_file, weights_only=False)
    weights = checkpoint.get('state_dict') or checkpoint['module']
    assert len(weights) > 100 and all(torch.isfinite(v).all() for v in weights.values())
    if checkpoint.get('optimizer'):  # FSDP's full checkpoint: Lion's state by name
        state = checkpoint['optimizer']['state']
        assert len(state) > 100 and set(state) <= set(weights)
        assert all(set(s) == {'exp_avg'} for s in state.values())


# An 8-epoch run of the demo (240 iterations, about 2.5 minutes on 2 cores) measured
# 0.530 bbox mAP on this project's machine (the full 24-epoch main job: 0.941). The
# floor leaves room for machine-to-machine numerical noise, not for a broken
# optimizer: the untrained model scores 0.000.
MAP_FLOOR_8E = 0.35


def test_demo_trains_loss_falls_and_clears_map_floor(tmp_path, shapes_data):
    """tools/train.py, then tools/test.py on its last checkpoint."""
    work_dir = str(tmp_path / 'short')
    out = run([sys.executable, 'tools/train.py', DEMO, '--work-dir', work_dir, '--cfg-options',
               'train_cfg.max_epochs=8', 'train_cfg.val_interval=100'])
    assert_paramwise_table_shows_norms_undecayed(out)
    losses = [r['loss'] for r in scalars(work_dir) if 'loss' in r]
    assert len(losses) == 24  # logged every 10 of 240 iterations
    first_epoch, last_epoch = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last_epoch < 0.6 * first_epoch, (first_epoch, last_epoch)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    assert checkpoint.endswith('epoch_8.pth')
    out = run([sys.executable, 'tools/test.py', DEMO, checkpoint, '--work-dir',
               str(tmp_path / 'test')])
    match = re.search(r'bbox mAP: ([0-9.]+)', out)
    assert match, out[-3000:]
    assert float(match.group(1)) >= MAP_FLOOR_8E, match.group(0)


# What each demo must reach from scratch: a floor above what a model that learned
# nothing scores, with a margin measured on both machine types CI runs on (AMD EPYC,
# AVX2; Intel Xeon, AVX-512), not one machine's trajectory.
# - ViT on the Shapes crops (3 classes, balanced): chance is 33.3 top-1; measured 100.
# - SegFormer on the Shapes masks: a model that predicts background everywhere scores
#   mIoU 22.5 (background IoU ~90, three shape classes 0); the 400-iteration demo
#   measured 34.9 (AMD) and 33.3 (Intel, loss 0.385 -> 0.166). At 200 iterations
#   the Intel run had learned the background only (mIoU 22.5, loss 0.62x), which is why
#   the test trains the demo as shipped, and why 27 (some IoU on the shapes) is the floor.
@pytest.mark.parametrize('config,options,metric,floor', [
    (VIT_DEMO, [], r'accuracy/top1: ([0-9.]+)', 90.0),
    (SEGFORMER_DEMO, [], r'mIoU: ([0-9.]+)', 27.0),
], ids=['mmpretrain-vit', 'mmseg-segformer'])
def test_classification_and_segmentation_demos_train(tmp_path, shapes_data, config, options,
                                                     metric, floor):
    """tools/train.py on a Lion recipe of each other family, from scratch on CPU: the
    codebase's own metric scores the model above what learning nothing scores
    (mmpretrain's Accuracy, mmseg's IoUMetric), and the loss falls."""
    work_dir = str(tmp_path / 'run')
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    out = run(cmd + (['--cfg-options', *options] if options else []),
              env=dict(PYTHONPATH=TORCHVISION_SHIM))  # mmpretrain needs torchvision
    assert_paramwise_table_shows_norms_undecayed(out)
    scores = re.findall(metric, out)
    assert scores and float(scores[-1]) >= floor, scores
    losses = [r['loss'] for r in scalars(work_dir) if 'loss' in r]
    assert len(losses) >= 10
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.6 * first, (first, last)  # measured: 0.43x (SegFormer, Intel)


def _fingerprint(folder):
    """Every file under ``folder`` with its SHA-256: byte-identical or not."""
    found = {}
    for top, _, files in os.walk(folder):
        for name in files:
            path = osp.join(top, name)
            with open(path, 'rb') as f:
                found[osp.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


def _users_shapes_folder(tmp_path):
    """A user's own dataset in a folder named shapes/ (the name the demo uses)."""
    root = tmp_path / 'my_project' / 'data' / 'shapes'
    (root / 'annotations').mkdir(parents=True)
    (root / 'annotations' / 'instances_train.json').write_text('{"my": "labels"}')
    (root / 'photo_0001.jpg').write_bytes(os.urandom(4096))
    (root / 'notes.txt').write_text('three weeks of labelling')
    return root


def test_a_users_shapes_folder_survives_every_tool(tmp_path):
    """train.py, test.py and dist_train.sh with a config whose data_root is a user's
    folder named shapes/: each fails (the data is not what the config expects), and
    every file of the folder stays byte-identical; the generator refuses it too."""
    root = _users_shapes_folder(tmp_path)
    before = _fingerprint(root)
    config = tmp_path / 'users_config.py'
    config.write_text(f"_base_ = '{DEMO}'\n"
                      f"data_root = '{root}/'\n"
                      "train_dataloader = dict(dataset=dict(data_root=data_root))\n"
                      "val_dataloader = dict(dataset=dict(data_root=data_root))\n"
                      "test_dataloader = val_dataloader\n"
                      "val_evaluator = dict(ann_file=data_root + "
                      "'annotations/instances_val.json')\n"
                      "test_evaluator = val_evaluator\n")
    work_dir = tmp_path / 'work'
    out = python_tool('tools/train.py', config, '--work-dir', work_dir, expect_rc=None)
    assert 'instances_val.json' in out or 'train/' in out  # check_config names what is missing
    run_tool(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work_dir)],
             env=dict(PORT=str(free_port())), expect_rc=None)
    python_tool('tools/test.py', config, tmp_path / 'none.pth', '--work-dir', work_dir,
                expect_rc=None)
    out = python_tool('tools/dataset_converters/generate_shapes.py', root, expect_rc=None)
    assert 'was not generated by mmlion' in out and str(root) in out
    assert _fingerprint(root) == before


def test_generator_owns_only_its_stamped_copy(tmp_path):
    """A fresh folder is generated and stamped; an intact copy is left alone; a file a
    user adds, or one they change, makes the generator refuse and touch nothing."""
    root = str(tmp_path / 'shapes')
    generate_shapes(root)
    stamped = _fingerprint(root)
    assert '.mmlion-stamp.json' in stamped and 'annotations/instances_val.json' in stamped
    generate_shapes(root)  # intact and current: a no-op
    assert _fingerprint(root) == stamped
    (tmp_path / 'shapes' / 'mine.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='mine.txt'):
        generate_shapes(root)
    os.remove(osp.join(root, 'mine.txt'))
    with open(osp.join(root, 'train', '00001.png'), 'ab') as f:
        f.write(b'edited')
    edited = _fingerprint(root)
    with pytest.raises(FileExistsError, match='changed'):
        generate_shapes(root)
    assert _fingerprint(root) == edited
    empty = tmp_path / 'empty'
    empty.mkdir()
    generate_shapes(str(empty))  # an empty folder is fine
    assert _fingerprint(str(empty)).keys() == stamped.keys()
