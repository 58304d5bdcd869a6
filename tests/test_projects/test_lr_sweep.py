"""projects/lion_evidence/tools/lr_sweep.py: what each sweep point trains with, where the
grid grows, the fitted exponent, and a short real sweep on the digits that resumes run by
run."""
import csv
import math

import pytest

from helpers import png_size
from projects.lion_evidence.tools import lr_sweep


def _options(cfg_options):
    return dict(option.split('=', 1) for option in cfg_options)


@pytest.mark.parametrize('name', ['AdamW', 'Lion'])
def test_a_point_keeps_lr_times_decay_eta_min_ratio_and_warmup_epochs(name):
    task = lr_sweep.TASKS['digits']
    base = lr_sweep.recipe(task.configs[name])
    lr = lr_sweep.centre(task, name, 128, base) * 2.0 ** -1
    got = _options(lr_sweep.options(task, base, 128, lr, seed=3, epochs=7))
    assert math.isclose(float(got['optim_wrapper.optimizer.lr']) *
                        float(got['optim_wrapper.optimizer.weight_decay']),
                        base['lr'] * base['weight_decay'])
    cosine = f"param_scheduler.{base['cosine']}"
    assert math.isclose(float(got[f'{cosine}.eta_min']) / lr, base['eta_min_ratio'])
    assert got[f'{cosine}.T_max'] == got['train_cfg.max_epochs'] == '7'
    # the warmup lasts as many epochs: 4x the batch, a quarter of the iterations
    assert int(got['param_scheduler.0.end']) == round(base['warmup_end'] * 32 / 128)
    assert got['train_dataloader.batch_size'] == '128' and got['randomness.seed'] == '3'
    # the grid is centred on the usual rule: linear for AdamW, square root for Lion
    assert math.isclose(lr * 2, base['lr'] * 4 ** lr_sweep.USUAL_EXPONENT[name])


def _rows(metrics, seeds=(0, 1), optimizer='Lion', batch=64):
    return [dict(optimizer=optimizer, batch=batch, step=step, lr=2.0 ** step, seed=seed,
                 metric=value + 0.01 * seed) for step, value in metrics.items()
            for seed in seeds]


@pytest.mark.parametrize('metrics, expected', [
    ({-1: 0.5, 0: 0.7, 1: 0.6}, [-1, 0, 1]),           # best inside: the grid stays
    ({-1: 0.5, 0: 0.6, 1: 0.7}, [-1, 0, 1, 2]),        # best at the top edge: one more
    ({-1: 0.7, 0: 0.6, 1: 0.5}, [-2, -1, 0, 1]),       # at the bottom edge
    ({-1: 0.5, 0: 0.6, 1: 0.7, 2: 0.8, 3: 0.9}, [-1, 0, 1, 2, 3]),  # extended twice: enough
])
def test_the_grid_grows_where_the_best_is_at_an_edge(metrics, expected):
    args = lr_sweep.parse_args(['--steps', '-1', '0', '1', '--max-extend', '2'])
    assert lr_sweep.steps_to_run(_rows(metrics), 'Lion', 64, args) == expected


def test_the_grid_waits_for_every_seed_before_it_grows():
    args = lr_sweep.parse_args(['--steps', '-1', '0', '1'])
    rows = _rows({-1: 0.5, 0: 0.6, 1: 0.7}, seeds=(0,))
    assert lr_sweep.steps_to_run(rows, 'Lion', 64, args) == [-1, 0, 1]


def test_the_refined_optimum_is_the_top_of_the_parabola_through_the_best_three():
    top = -0.3  # log2 of the true best lr, between grid points 0 and -1
    runs = {step: [dict(lr=2.0 ** step, seed=0, metric=1 - (step - top) ** 2)]
            for step in (-2, -1, 0, 1)}
    assert math.isclose(lr_sweep.refined_lr(runs), 2.0 ** top)
    # at an edge of the grid it stays on the grid's best
    edge = {step: runs[step] for step in (0, 1)}
    assert lr_sweep.refined_lr(edge) == 1.0
    # a neighbour that this seed has not run yet: the grid's best too
    assert lr_sweep.refined_lr({**runs, 1: [dict(lr=2.0, seed=1, metric=0.0)]}, seed=0) == 1.0


def test_a_point_half_run_does_not_win_on_one_seed():
    runs = {step: [dict(lr=2.0 ** step, seed=seed, metric=0.5) for seed in (0, 1)]
            for step in (0, 1)}
    runs[2] = [dict(lr=4.0, seed=0, metric=0.9)]
    assert lr_sweep.best_step(runs) == 0 and lr_sweep.best_step(runs, seed=0) == 2


def test_the_exponent_is_fitted_in_log_log():
    assert math.isclose(lr_sweep.fit_exponent([(b, 3e-4 * b ** 0.7) for b in (16, 64, 256)]),
                        0.7)


def test_points_run_batch_by_batch_low_lr_first_and_skip_what_ran():
    args = lr_sweep.parse_args(['--task', 'shapes', '--steps', '0', '1', '--seeds', '0'])
    ran = [dict(optimizer='AdamW', batch=64, step=0, seed=0, metric=0.5)]
    assert lr_sweep.points_to_run(ran, args) == [
        (64, 0, 0, 'Lion'), (64, 1, 0, 'AdamW'), (64, 1, 0, 'Lion'),
        (16, 0, 0, 'AdamW'), (16, 0, 0, 'Lion'), (16, 1, 0, 'AdamW'), (16, 1, 0, 'Lion')]


def test_jobs_below_one_is_refused(capsys):
    with pytest.raises(SystemExit):
        lr_sweep.parse_args(['--jobs', '0'])
    assert '--jobs must be at least 1, got 0' in capsys.readouterr().err


@pytest.mark.slow
def test_a_short_digits_sweep_writes_csv_summary_and_plot_and_resumes(tmp_path, capsys):
    common = ['--task', 'digits', '--epochs', '2', '--batch-sizes', '64', '256', '--seeds',
              '0', '--max-extend', '0', '--out', str(tmp_path)]
    lr_sweep.main([*common, '--steps', '0', '1'])
    with open(tmp_path / 'digits.csv') as f:
        first = list(csv.DictReader(f))
    assert len(first) == 2 * 2 * 2  # batches x steps x optimizers
    assert all(0 <= float(r['metric']) <= 1 for r in first)
    # Resumed with a wider grid, two points at a time: only the new points train.
    lr_sweep.main([*common, '--steps', '-1', '0', '1', '--jobs', '2'])
    with open(tmp_path / 'digits.csv') as f:
        rows = list(csv.DictReader(f))
    assert rows[:len(first)] == first and len(rows) == 2 * 3 * 2
    assert {r['step'] for r in rows[len(first):]} == {'-1'}
    summary = (tmp_path / 'digits_summary.md').read_text()
    assert '| 64 |' in summary and '| 256 |' in summary
    assert '| Lion |' in summary and '| AdamW |' in summary  # an exponent each
    assert png_size(tmp_path / 'digits_lr_sweep.png')[0] > 500
    assert '12 runs' in capsys.readouterr().out
