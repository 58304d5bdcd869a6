"""mmlion.cli.dist: torchrun on machines without GPUs (the parts that need no process
group; tests/test_cli/test_dist_runs.py and tests/test_tools/ run real torchrun jobs)."""
import pytest
import torch
from mmengine.config import Config

from helpers import DEMO
from mmlion.cli import dist


def test_restart_count_is_torchruns(monkeypatch):
    monkeypatch.delenv('TORCHELASTIC_RESTART_COUNT', raising=False)
    assert dist.torchrun_restart() == 0
    monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', '2')
    assert dist.torchrun_restart() == 2


def test_sync_bn_becomes_bn_and_rtmdet_stops_asking_for_it():
    model = dict(type='RTMDet', backbone=dict(norm_cfg=dict(type='SyncBN')),
                 neck=[dict(norm_cfg=dict(type='MMSyncBN')), dict(norm_cfg=dict(type='BN'))])
    assert dist._without_sync_bn(model)
    assert model['backbone']['norm_cfg']['type'] == 'BN'
    assert [n['norm_cfg']['type'] for n in model['neck']] == ['BN', 'BN']
    assert model['use_syncbn'] is False
    assert not dist._without_sync_bn(model)  # nothing left to change


def test_launcher_none_changes_nothing():
    cfg = Config.fromfile(DEMO)
    before = cfg.to_dict()
    dist.setup_distributed(cfg, 'none')
    assert cfg.to_dict() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU-only path')
def test_other_launchers_are_refused_without_a_gpu():
    with pytest.raises(ValueError, match="launcher='slurm'"):
        dist.setup_distributed(Config.fromfile(DEMO), 'slurm')
