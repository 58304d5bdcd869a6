"""Put the loss and validation curves of several runs on one figure, from the logs
MMEngine writes itself (``WORK_DIR/<timestamp>/vis_data/scalars.json``), and print a
table: iterations, final loss, each validation score, seconds per iteration and, where
the log has it (CUDA), peak memory.

Example:
    python tools/analysis_tools/compare_runs.py work_dirs/lion work_dirs/adamw \\
        --labels Lion AdamW --out lion_vs_adamw.png
"""
import argparse
import glob
import json
import os.path as osp
import statistics
from typing import Dict, List, Optional


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='+', help='work dirs of MMEngine runs')
    parser.add_argument('--labels', nargs='+', help='one name per run (default: folder names)')
    parser.add_argument('--metric', default=None,
                        help='validation key to plot (default: the first of coco/bbox_mAP, '
                        'accuracy/top1, accuracy found in the logs)')
    parser.add_argument('--out', default='runs.png', help='the PNG to write')
    return parser.parse_args(argv)


def scalars_files(work_dir: str) -> List[str]:
    """Every run's scalars.json in the work dir, oldest first (a resumed run adds one)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'{work_dir!r}: no */vis_data/scalars.json; is it the work_dir '
                                f'of an MMEngine run?')
    return files


def read_run(work_dir: str) -> Dict[str, list]:
    """Training records (with 'loss') and validation records (without), in order;
    when a run was resumed, later logs replace the earlier ones from the same step on."""
    train: Dict[int, dict] = {}
    val: Dict[int, dict] = {}
    for path in scalars_files(work_dir):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                record = json.loads(line)
                target = train if 'loss' in record else val
                target[int(record.get('step', len(target)))] = record
    return dict(train=[train[k] for k in sorted(train)], val=[val[k] for k in sorted(val)])


def pick_metric(runs: List[dict], wanted: Optional[str]) -> Optional[str]:
    keys = set()
    for run in runs:
        for record in run['val']:
            keys.update(record)
    if wanted:
        if wanted not in keys:
            raise KeyError(f'--metric {wanted!r} is in no log; the logs have {sorted(keys)}')
        return wanted
    for key in ('coco/bbox_mAP', 'accuracy/top1', 'accuracy'):
        if key in keys:
            return key
    return None


def summary(run: dict, metric: Optional[str]) -> dict:
    losses = [r['loss'] for r in run['train']]
    times = [r['time'] for r in run['train'] if 'time' in r]
    memory = [r['memory'] for r in run['train'] if 'memory' in r]
    scores = [(r.get('step'), r[metric]) for r in run['val'] if metric and metric in r]
    return dict(
        iters=run['train'][-1].get('iter', run['train'][-1].get('step')) if run['train'] else 0,
        final_loss=statistics.mean(losses[-5:]) if losses else float('nan'),
        scores=scores,
        s_per_iter=statistics.median(times) if times else float('nan'),
        peak_memory=max(memory) if memory else None)


def plot(runs, labels, metric, out) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for run, label in zip(runs, labels):
        steps = [r['step'] for r in run['train']]
        axes[0].plot(steps, [r['loss'] for r in run['train']], label=label, linewidth=1.2)
        if metric:
            points = [(r['step'], r[metric]) for r in run['val'] if metric in r]
            if points:
                axes[1].plot(*zip(*points), marker='o', label=label)
    axes[0].set_xlabel('iteration')
    axes[0].set_ylabel('training loss (as logged)')
    axes[1].set_xlabel('epoch (or iteration) of validation')
    axes[1].set_ylabel(metric or 'no validation metric in the logs')
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    labels = args.labels or [osp.basename(osp.normpath(w)) for w in args.work_dirs]
    if len(labels) != len(args.work_dirs):
        raise SystemExit(f'--labels: {len(labels)} names for {len(args.work_dirs)} work dirs')
    runs = [read_run(w) for w in args.work_dirs]
    metric = pick_metric(runs, args.metric)
    print(f'| run | iterations | final loss | {metric or "metric"} (at step) | s/iter | '
          f'peak memory (MB) |')
    print('| --- | ---: | ---: | --- | ---: | ---: |')
    rows = []
    for run, label in zip(runs, labels):
        s = summary(run, metric)
        rows.append(s)
        scores = ', '.join(f'{v:.3f} ({step})' for step, v in s['scores']) or '-'
        memory = f"{s['peak_memory']:.0f}" if s['peak_memory'] is not None else '-'
        print(f"| {label} | {s['iters']} | {s['final_loss']:.4f} | {scores} | "
              f"{s['s_per_iter']:.3f} | {memory} |")
    plot(runs, labels, metric, args.out)
    print(f'\nwrote {args.out}')
    return rows


if __name__ == '__main__':
    main()
