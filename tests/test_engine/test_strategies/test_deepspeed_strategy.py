"""mmlion.DeepSpeedStrategy: MMEngine's DeepSpeed strategy (ZeRO-1 and ZeRO-2, Lion as
deepspeed's client optimizer) on two CPU processes."""
import pytest
import torch

from helpers import free_port, kill_and_resume, load, train, write_config

pytestmark = pytest.mark.slow


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
