"""The best learning rate per batch, for Lion and for AdamW, measured: a sweep of the lr
on a factor-2 grid at each batch size, several seeds per point, and the exponent ``k``
of ``best lr ~ batch ** k`` fitted from the optima.

Tasks: ``digits`` (the UCI digits MLP, batches 16 to 1024, 20 epochs) and ``shapes``
(the demo RTMDet-tiny on Shapes, batches 16 and 64, 24 epochs). Each optimizer starts
from its recipe at the recipe's batch (AdamW: the AdamW config; Lion: the converted
digits twin, the main job's Shapes recipe). At batch ``b`` the grid is centred on the lr
its usual rule gives there (AdamW linear, MMEngine's; Lion square root, mmlion's default
before this sweep; fixed, so the CSVs resume) and spans ``2 ** j`` times it for ``j`` in
``--steps`` (default -2 to 2); where the best point (mean over seeds) is at an edge, the
grid grows by one point on that side, up to ``--max-extend`` times. As the lr moves,
``lr * weight_decay`` and the cosine's ``eta_min / lr`` stay as in the recipe, and the
warmup lasts as many epochs as at the recipe's batch. Every run is ``tools/train.py``
(the MMEngine Runner).

Each finished run is a row of the CSV (``<out>/<task>.csv``): a sweep stopped at any
point resumes where it stopped, run by run. ``--background`` detaches it (the log, one
progress line per run, goes to ``<out>/<task>.log``). At the end, and with ``--report``
alone at any time, it writes the best-vs-best table per batch and the fitted exponents
(``<out>/<task>_summary.md``) and the figure (``<out>/<task>_lr_sweep.png``).

Examples (the Shapes sweep at batch 64 first: it is the costly part)::

    python projects/lion_evidence/tools/lr_sweep.py --task shapes --batch-sizes 64 16 --background
    python projects/lion_evidence/tools/lr_sweep.py --task digits
    python projects/lion_evidence/tools/lr_sweep.py --task digits --report
"""
import argparse
import csv
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

FIELDS = ['task', 'optimizer', 'batch', 'step', 'lr', 'weight_decay', 'seed', 'metric',
          'seconds']


class Task(NamedTuple):
    configs: Dict[str, str]   # optimizer: the recipe
    base_batch: int           # the recipes' batch
    epochs: int
    train_images: int
    metric: str               # what the CSV's 'metric' column holds
    batch_sizes: List[int]


TASKS = {
    'digits': Task({'AdamW': 'projects/lion_evidence/configs/digits/mlp_1xb32-adamw-20e_digits.py',
                    'Lion': 'projects/lion_evidence/configs/digits/mlp_1xb32-lion-20e_digits.py'},
                   32, 20, 1437, 'val accuracy', [16, 64, 256, 1024]),
    'shapes': Task({'AdamW': 'configs/lion/demo/rtmdet_tiny_1xb16-adamw-24e_shapes.py',
                    'Lion': 'configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py'},
                   16, 24, 480, 'bbox mAP', [64, 16]),
}
USUAL_EXPONENT = {'AdamW': 1.0, 'Lion': 0.5}  # the rule that centres each batch's grid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', choices=list(TASKS), default='digits')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=None,
                        help="in this order (default: the task's, digits 16 64 256 1024, "
                             "shapes 64 16)")
    parser.add_argument('--optimizers', nargs='+', choices=list(USUAL_EXPONENT),
                        default=list(USUAL_EXPONENT))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--steps', type=int, nargs='+', default=[-2, -1, 0, 1, 2],
                        help='the grid: 2 ** step times the centre')
    parser.add_argument('--max-extend', type=int, default=3,
                        help='grid points added at most, per side, where the best is at an edge')
    parser.add_argument('--epochs', type=int, default=None,
                        help="default: the task's (digits 20, shapes 24)")
    parser.add_argument('--fit-batches', type=int, nargs='+', default=None,
                        help='fit the exponent over these batches only (default: all)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='points run at once, the cores shared between them (on a '
                             'small CPU machine 2 at a time finish more per hour than 1)')
    parser.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'lr_sweep'))
    parser.add_argument('--report', action='store_true', help='tabulate and plot the CSV only')
    parser.add_argument('--background', action='store_true',
                        help='detach; progress to <out>/<task>.log')
    args = parser.parse_args(argv)
    args.batch_sizes = args.batch_sizes or TASKS[args.task].batch_sizes
    args.epochs = args.epochs or TASKS[args.task].epochs
    if args.jobs < 1:
        parser.error(f'--jobs must be at least 1, got {args.jobs}')
    return args


# -- the recipe, moved to another batch and lr --------------------------------------------
def recipe(config: str) -> dict:
    """The values of ``config`` a sweep point changes."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    optimizer = cfg.optim_wrapper.optimizer
    cosine = next(i for i, s in enumerate(cfg.param_scheduler) if 'eta_min' in s)
    return dict(lr=optimizer.lr, weight_decay=optimizer.weight_decay,
                warmup_end=cfg.param_scheduler[0].end, cosine=cosine,
                eta_min_ratio=cfg.param_scheduler[cosine].eta_min / optimizer.lr)


def centre(task: Task, optimizer: str, batch: int, base: dict) -> float:
    return base['lr'] * (batch / task.base_batch) ** USUAL_EXPONENT[optimizer]


def options(task: Task, base: dict, batch: int, lr: float, seed: int,
            epochs: int) -> List[str]:
    """--cfg-options for one point: the batch, the lr with lr * weight_decay and
    eta_min / lr as in the recipe, the warmup as many epochs long, the seed, the
    epochs (the cosine as long)."""
    warmup = max(1, round(base['warmup_end'] * task.base_batch / batch))
    cosine = f"param_scheduler.{base['cosine']}"
    return [f'train_dataloader.batch_size={batch}', f'optim_wrapper.optimizer.lr={lr!r}',
            f"optim_wrapper.optimizer.weight_decay={base['weight_decay'] * base['lr'] / lr!r}",
            f'param_scheduler.0.end={warmup}',
            f"{cosine}.eta_min={lr * base['eta_min_ratio']!r}", f'{cosine}.end={epochs}',
            f'{cosine}.T_max={epochs}', f'randomness.seed={seed}',
            f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}']


class Training(NamedTuple):
    """One point running through tools/train.py."""
    point: Tuple[int, int, int, str]   # (batch, step, seed, optimizer)
    lr: float
    work_dir: str
    process: subprocess.Popen
    started: float


def start_training(config: str, cfg_options: List[str], work_dir: str,
                   threads: int) -> subprocess.Popen:
    """tools/train.py for one point, on ``threads`` CPU threads, its output to
    ``<work_dir>/train.out``."""
    os.makedirs(work_dir, exist_ok=True)
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), osp.join(ROOT, config),
           '--work-dir', work_dir, '--cfg-options', *cfg_options]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(osp.join(work_dir, 'train.out'), 'w') as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def final_metric(task_name: str, training: Training) -> float:
    """The last validation's metric of a finished run (its output's tail if it failed)."""
    import json
    if training.process.returncode != 0:
        with open(osp.join(training.work_dir, 'train.out')) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{" ".join(training.process.args)} failed:\n{tail}')
    work_dir = training.work_dir
    key = 'val/accuracy' if task_name == 'digits' else 'coco/bbox_mAP'
    logs = sorted(osp.join(d.path, 'vis_data', 'scalars.json') for d in os.scandir(work_dir)
                  if osp.exists(osp.join(d.path, 'vis_data', 'scalars.json')))
    with open(logs[-1]) as f:
        scores = [json.loads(line)[key] for line in f if f'"{key}"' in line]
    return scores[-1]


# -- the CSV, and what is left to run ---------------------------------------------------
def read_rows(path: str) -> List[dict]:
    if not osp.exists(path):
        return []
    with open(path, newline='') as f:
        return [dict(row, batch=int(row['batch']), step=int(row['step']), lr=float(row['lr']),
                     seed=int(row['seed']), metric=float(row['metric']),
                     seconds=float(row['seconds'])) for row in csv.DictReader(f)]


def append_row(path: str, row: dict) -> None:
    new = not osp.exists(path)
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row[k] for k in FIELDS})


def curve(rows: List[dict], optimizer: str, batch: int) -> Dict[int, List[dict]]:
    """{grid step: the runs there} for one optimizer and batch."""
    found: Dict[int, List[dict]] = {}
    for row in rows:
        if row['optimizer'] == optimizer and row['batch'] == batch:
            found.setdefault(row['step'], []).append(row)
    return found


def metrics_at(runs: Dict[int, List[dict]], step: int, seed: Optional[int] = None) -> List[float]:
    """The metrics run at one grid step: every seed's, or one seed's (none where that
    step, or that seed at it, has not run)."""
    return [r['metric'] for r in runs.get(step, []) if seed is None or r['seed'] == seed]


def steps_to_run(rows: List[dict], optimizer: str, batch: int, args) -> List[int]:
    """The grid's steps, plus one beyond each edge where the best mean sits there once
    every seed has run (at most ``--max-extend`` per side)."""
    steps = sorted(set(args.steps) | set(curve(rows, optimizer, batch)))
    runs = curve(rows, optimizer, batch)
    if not all(len({r['seed'] for r in runs.get(s, [])} & set(args.seeds)) == len(args.seeds)
               for s in steps):
        return steps
    means = {s: statistics.mean(metrics_at(runs, s)) for s in steps}
    best = max(steps, key=lambda s: means[s])
    if best == steps[0] and min(args.steps) - steps[0] < args.max_extend:
        return [steps[0] - 1] + steps
    if best == steps[-1] and steps[-1] - max(args.steps) < args.max_extend:
        return steps + [steps[-1] + 1]
    return steps


def points_to_run(rows: List[dict], args) -> List[Tuple[int, int, int, str]]:
    """(batch, step, seed, optimizer) left to run, in the order they run: batch by batch
    as given, low lr first, the optimizers and seeds interleaved."""
    done = {(r['batch'], r['step'], r['seed'], r['optimizer']) for r in rows}
    todo = [(batch, step, seed, name) for batch in args.batch_sizes
            for name in args.optimizers for step in steps_to_run(rows, name, batch, args)
            for seed in args.seeds if (batch, step, seed, name) not in done]
    return sorted(todo, key=lambda t: (args.batch_sizes.index(t[0]), t[1], t[2]))


def run(args) -> None:
    """Run what is left, ``--jobs`` points at a time, each on its share of the cores; a
    point's row is written as it finishes."""
    task = TASKS[args.task]
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, f'{args.task}.csv')
    bases = {name: recipe(task.configs[name]) for name in args.optimizers}
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    running: List[Training] = []
    while True:
        rows = read_rows(path)
        busy = {t.point for t in running}
        todo = [p for p in points_to_run(rows, args) if p not in busy]
        while todo and len(running) < args.jobs:
            batch, step, seed, name = point = todo.pop(0)
            lr = centre(task, name, batch, bases[name]) * 2.0 ** step
            work_dir = osp.join(args.out, args.task,
                                f'{name.lower()}_b{batch}_step{step}_seed{seed}')
            process = start_training(task.configs[name],
                                     options(task, bases[name], batch, lr, seed, args.epochs),
                                     work_dir, threads)
            running.append(Training(point, lr, work_dir, process, time.time()))
        if not running:
            break
        while all(t.process.poll() is None for t in running):
            time.sleep(2)
        finished = next(t for t in running if t.process.returncode is not None)
        running.remove(finished)
        try:
            metric = final_metric(args.task, finished)
        except RuntimeError:
            for other in running:
                other.process.terminate()
            raise
        batch, step, seed, name = finished.point
        row = dict(task=args.task, optimizer=name, batch=batch, step=step, lr=finished.lr,
                   weight_decay=bases[name]['weight_decay'] * bases[name]['lr'] / finished.lr,
                   seed=seed, metric=metric, seconds=round(time.time() - finished.started, 1))
        append_row(path, row)
        left = len(points_to_run(rows + [row], args))
        print(f'[{len(rows) + 1} done, {left} left] {args.task} {name} batch {batch} '
              f'lr {finished.lr:.3g} (step {step:+d}) seed {seed}: {task.metric} {metric:.4f} '
              f'({row["seconds"] / 60:.1f} min, {args.jobs} at a time)', flush=True)


# -- what the rows say ------------------------------------------------------------------
def best_step(runs: Dict[int, List[dict]], seed: Optional[int] = None) -> int:
    """The grid step with the best metric (one seed's, or the mean over seeds, among the
    steps that have as many seeds as any: a point half run does not win on one seed)."""
    most = max(len({r['seed'] for r in found}) for found in runs.values())
    complete = [s for s in sorted(runs) if seed is not None or
                len({r['seed'] for r in runs[s]}) == most]

    def score(step):
        values = metrics_at(runs, step, seed)
        return statistics.mean(values) if values else -math.inf
    return max(complete, key=score)


def refined_lr(runs: Dict[int, List[dict]], seed: Optional[int] = None) -> float:
    """The best lr between grid points: the top of the parabola through the best point
    and its two neighbours (metric against log2 lr), kept within the neighbours; the
    grid's best itself where it sits at an edge or the three do not bend down."""
    top = best_step(runs, seed)
    lr = runs[top][0]['lr']
    around = [metrics_at(runs, step, seed) for step in (top - 1, top, top + 1)]
    if not all(around):  # an edge, or a neighbour this seed has not run yet
        return lr
    low, mid, high = map(statistics.mean, around)
    bend = low - 2 * mid + high
    if bend >= 0:
        return lr
    offset = max(-1.0, min(1.0, (low - high) / (2 * bend)))  # in grid steps (factors of 2)
    return lr * 2.0 ** offset


def best_lrs(rows: List[dict], name: str, batches: List[int], seed: Optional[int] = None,
             refine: bool = False) -> Dict[int, float]:
    """{batch: the best lr} for one optimizer (one seed's best, or the seed-mean's; the
    grid point, or with ``refine`` :func:`refined_lr`)."""
    found = {}
    for batch in batches:
        runs = curve(rows, name, batch)
        if runs:
            found[batch] = refined_lr(runs, seed) if refine else \
                runs[best_step(runs, seed)][0]['lr']
    return found


def fit_exponent(points: List[Tuple[int, float]]) -> float:
    """k of lr ~ batch ** k, least squares in log-log, over (batch, best lr) points."""
    xs, ys = [math.log2(b) for b, _ in points], [math.log2(lr) for _, lr in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def summarize(rows: List[dict], args) -> str:
    task = TASKS[args.task]
    batches = [b for b in args.batch_sizes if any(r['batch'] == b for r in rows)]
    lines = [f'### {args.task}: best lr per batch ({task.metric} after {args.epochs} epochs, '
             f'mean +- std over seeds at the best grid point)', '',
             '| batch | steps | ' + ' | '.join(f'{n} best lr | {n} {task.metric}'
                                      for n in args.optimizers) + ' | Lion - AdamW |',
             '| ---: | ---: |' + ' ---: | ---: |' * len(args.optimizers) + ' ---: |']
    best: Dict[str, Dict[int, float]] = {n: {} for n in args.optimizers}  # its metric
    for batch in batches:
        cells = []
        for name in args.optimizers:
            runs = curve(rows, name, batch)
            if not runs:
                cells += ['-', '-']
                continue
            step = best_step(runs)
            values = metrics_at(runs, step)
            best[name][batch] = statistics.mean(values)
            spread = f' +- {statistics.stdev(values):.3f}' if len(values) > 1 else ''
            edge = ' (edge)' if step in (min(runs), max(runs)) else ''
            cells += [f'{runs[step][0]["lr"]:.3g}{edge}', f'{statistics.mean(values):.3f}{spread}']
        gap = (f'{best["Lion"][batch] - best["AdamW"][batch]:+.3f}'
               if batch in best.get('Lion', {}) and batch in best.get('AdamW', {}) else '-')
        steps = args.epochs * math.ceil(task.train_images / batch)
        lines.append(f'| {batch} | {steps} | ' + ' | '.join(cells) + f' | {gap} |')
    fitted = [b for b in batches if args.fit_batches is None or b in args.fit_batches]
    lines += ['', f'Fitted over batches {", ".join(map(str, fitted))}:', '',
              '| optimizer | optima | k (best lr ~ batch^k), seed-mean curves | k per seed | '
                  'mean +- std over seeds | k between neighbouring batches |',
              '| --- | --- | ---: | --- | ---: | --- |']
    for name in args.optimizers:
        for refine, kind in ((False, 'grid'), (True, 'refined')):
            mean_best = best_lrs(rows, name, fitted, refine=refine)
            if len(mean_best) < 2:
                continue
            per_seed = [fit_exponent(list(best_lrs(rows, name, fitted, s, refine).items()))
                        for s in args.seeds]
            spread = f' +- {statistics.stdev(per_seed):.2f}' if len(per_seed) > 1 else ''
            order = sorted(mean_best)
            local = ', '.join(
                f'{a}-{b}: {fit_exponent([(a, mean_best[a]), (b, mean_best[b])]):.2f}'
                for a, b in zip(order, order[1:]))
            lines.append(f'| {name} | {kind} | {fit_exponent(list(mean_best.items())):.2f} | ' +
                         ', '.join(f'{k:.2f}' for k in per_seed) +
                         f' | {statistics.mean(per_seed):.2f}{spread} | {local} |')
    lines += ['', 'grid: the best grid point; refined: the top of the parabola through it and '
                  'its neighbours (metric against log2 lr).']
    wall = sum(r['seconds'] for r in rows) / 60
    lines += ['', f'{len(rows)} runs, {wall:.0f} min of training in all.']
    return '\n'.join(lines)


def plot(rows: List[dict], args, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    task = TASKS[args.task]
    panels = len(args.optimizers) + 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), dpi=100, squeeze=False)
    for ax, name in zip(axes[0], args.optimizers):
        for batch in args.batch_sizes:
            runs = curve(rows, name, batch)
            if not runs:
                continue
            steps = sorted(runs)
            lrs = [runs[s][0]['lr'] for s in steps]
            values = [metrics_at(runs, s) for s in steps]
            line = ax.errorbar(lrs, [statistics.mean(v) for v in values],
                               yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in values],
                               marker='o', capsize=3, label=f'batch {batch}')
            top = best_step(runs)
            ax.plot(runs[top][0]['lr'], statistics.mean(metrics_at(runs, top)), '*',
                    markersize=16, color=line[0].get_color(), markeredgecolor='black')
        ax.set_xscale('log', base=2)
        ax.set_xlabel(f'{name} lr (lr x weight_decay fixed; star: the best)')
        ax.set_ylabel(f'{task.metric} after {args.epochs} epochs (mean +- std, '
                      f'{len(args.seeds)} seeds)')
        ax.set_title(f'{args.task}: {name}')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    plot_best_lrs(axes[0][-1], rows, args)
    fig.tight_layout()
    fig.savefig(path)


def plot_best_lrs(ax, rows: List[dict], args) -> None:
    """The best lr against the batch, log-log, per optimizer (each seed's best faint),
    with the slopes of the linear and square-root rules drawn through the first point."""
    batches = [b for b in sorted(args.batch_sizes) if any(r['batch'] == b for r in rows)]
    for name in args.optimizers:
        mean_best = best_lrs(rows, name, batches)
        if not mean_best:
            continue
        order = sorted(mean_best)
        fit = f' (fit k = {fit_exponent(list(mean_best.items())):.2f})' if len(order) > 1 else ''
        line, = ax.plot(order, [mean_best[b] for b in order], 'o-',
                        label=f'{name}: seed-mean best{fit}')
        for seed in args.seeds:
            seed_best = best_lrs(rows, name, batches, seed)
            ax.plot(list(seed_best), list(seed_best.values()), 'x', alpha=0.5,
                    color=line.get_color())
        first = order[0]
        for exponent, style in ((1.0, '--'), (0.5, ':')):
            ax.plot(order, [mean_best[first] * (b / first) ** exponent for b in order], style,
                    color=line.get_color(), alpha=0.6, linewidth=1)
    ax.set_xscale('log', base=2)
    ax.set_yscale('log', base=2)
    ax.set_xlabel('batch (x: one seed\'s best)')
    ax.set_ylabel('best lr')
    ax.set_title(f'{args.task}: best lr ~ batch^k (dashed k=1, dotted k=0.5)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def report(args) -> str:
    rows = read_rows(osp.join(args.out, f'{args.task}.csv'))
    if not rows:
        return f'no runs yet in {osp.join(args.out, args.task + ".csv")}'
    text = summarize(rows, args)
    with open(osp.join(args.out, f'{args.task}_summary.md'), 'w') as f:
        f.write(text + '\n')
    plot(rows, args, osp.join(args.out, f'{args.task}_lr_sweep.png'))
    return text + f'\n\nwrote {args.out}/{args.task}_summary.md and {args.task}_lr_sweep.png'


def main(argv=None):
    args = parse_args(argv)
    if args.background:
        os.makedirs(args.out, exist_ok=True)
        log = osp.join(args.out, f'{args.task}.log')
        argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != '--background']
        with open(log, 'a') as f:
            proc = subprocess.Popen([sys.executable, osp.abspath(__file__), *argv], cwd=ROOT,
                                    stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        print(f'lr sweep running in the background (pid {proc.pid}); progress: tail -f {log}')
        return
    if not args.report:
        run(args)
    print(report(args))


if __name__ == '__main__':
    main()
