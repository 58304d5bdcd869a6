"""projects/lion_evidence: the digits and LFW studies, shortened (real runs of
tools/train.py on scikit-learn's and scikit-image's data, real PNGs)."""
import glob
import json
import os.path as osp

import pytest
from mmengine.config import Config

from helpers import DEMO, ROOT, load_tool, png_size
from projects.lion_evidence.tools import batch_size_sweep as batch_size
from projects.lion_evidence.tools import convergence_digits as convergence

compare_runs = load_tool('tools/analysis_tools/compare_runs.py')


@pytest.mark.slow
def test_convergence_check_and_compare_runs(tmp_path, capsys):
    """Two short digits runs (Lion and AdamW) through tools/train.py, the table, and
    compare_runs on their logs."""
    results = convergence.main(['--seeds', '0', '--epochs', '3', '--report', '1', '3',
                                '--work-dir', str(tmp_path), '--plot',
                                str(tmp_path / 'digits.png')])
    printed = capsys.readouterr().out
    assert '| AdamW | 0 |' in printed and '| Lion (converted) | 0 |' in printed
    for name, seeds in results.items():
        epochs = seeds[0]
        # 10 classes: chance is 0.1. Three epochs of either optimizer learn the digits.
        assert epochs[3]['val_accuracy'] > 0.8, (name, epochs)
        assert epochs[3]['train_loss'] < epochs[1]['train_loss'], (name, epochs)
    assert png_size(tmp_path / 'digits.png') == (700, 450)

    out = tmp_path / 'runs.png'
    rows = compare_runs.main([str(tmp_path / 'lion_seed0'), str(tmp_path / 'adamw_seed0'),
                              '--labels', 'Lion', 'AdamW', '--metric', 'val/accuracy',
                              '--out', str(out)])
    printed = capsys.readouterr().out
    assert '| Lion | 135 |' in printed and '| AdamW | 135 |' in printed
    assert [len(r['scores']) for r in rows] == [3, 3]
    assert rows[0]['scores'][-1][1] == pytest.approx(results['Lion (converted)'][0][3]
                                                     ['val_accuracy'])
    assert png_size(out) == (1200, 450)
    with pytest.raises(FileNotFoundError, match='no \\*/vis_data/scalars.json'):
        compare_runs.main([str(tmp_path)])


@pytest.mark.slow
def test_batch_size_sweep_and_lfw_runs(tmp_path, capsys):
    """The evidence scripts, shortened: one batch size of the digits sweep (lr scaled
    from batch 32 by each rule, so batch 128 trains Lion at 1x, 4x and 2x) and one seed
    of the LFW subset."""
    results = batch_size.main(['--batch-sizes', '128', '--seeds', '0', '--epochs', '2',
                               '--work-dir', str(tmp_path / 'sweep'),
                               '--plot', str(tmp_path / 'batch.png')])
    printed = capsys.readouterr().out
    for name in ('AdamW (linear)', 'Lion (none)', 'Lion (linear)', 'Lion (sqrt)'):
        assert f'| 128 | {name} |' in printed
    assert "### Lion's val accuracy minus AdamW's" in printed
    for name, by_batch in results.items():
        assert sorted(by_batch) == [128]
        assert all(0.1 < run['val_accuracy'] <= 1 for runs in by_batch.values()
                   for run in runs), (name, by_batch)
    assert png_size(tmp_path / 'batch.png') == (1100, 420)
    lion_lr = Config.fromfile(osp.join(ROOT, convergence.CONFIGS['Lion (converted)']))
    for rule, factor in (('none', 1), ('linear', 128 / 32), ('sqrt', (128 / 32) ** 0.5)):
        log = glob.glob(str(tmp_path / 'sweep' / f'lion_{rule}_b128_seed0' / '*' /
                            'vis_data' / 'scalars.json'))[0]
        with open(log) as f:
            lrs = [json.loads(line)['lr'] for line in f if '"lr"' in line]
        assert max(lrs) == pytest.approx(lion_lr.optim_wrapper.optimizer.lr * factor,
                                         rel=0.05), rule
    with pytest.raises(SystemExit):  # LFW has 150 training images
        batch_size.parse_args(['--task', 'lfw', '--batch-sizes', '256'])

    lfw = convergence.main(['--task', 'lfw', '--seeds', '0', '--epochs', '3',
                            '--report', '3', '--work-dir', str(tmp_path / 'lfw')])
    printed = capsys.readouterr().out
    assert 'the 50 held-out crops' in printed
    for name, seeds in lfw.items():  # faces against non-faces: chance is 0.5
        assert all(s[3]['val_accuracy'] > 0.7 for s in seeds.values()), (name, seeds)


def test_seeds_shapes_trains_at_another_batch_with_a_rule():
    """``config.py:rule`` and ``--batch-size``: the options a run gets (the warmup keeps
    its epochs: 100 iterations of 16 images are 25 of 64)."""
    from projects.lion_evidence.tools import seeds_shapes
    assert seeds_shapes.batch_options(DEMO, 64) == ['train_dataloader.batch_size=64',
                                                    'param_scheduler.0.end=25']
    args = seeds_shapes.parse_args([f'{DEMO}:sqrt', '--batch-size', '64', '--seeds', '1'])
    assert (args.configs, args.batch_size, args.seeds) == ([f'{DEMO}:sqrt'], 64, [1])
