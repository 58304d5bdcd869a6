"""mmlion.FSDPStrategy: an upstream-style FlexibleRunner + FSDPStrategy config, unedited,
on two CPU processes."""
import contextlib

import pytest
import torch
from torch.distributed._shard.sharded_tensor import ShardedTensor

from helpers import assert_bitwise_equal, free_port, kill_and_resume, load, train, write_config

pytestmark = pytest.mark.slow


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
