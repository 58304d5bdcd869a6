"""Lion against AdamW on data no one here made: scikit-learn's UCI handwritten digits
(``--task digits``) or scikit-image's LFW subset of faces and non-faces (``--task lfw``).

Trains the task's AdamW config (``configs/digits/mlp_1xb32-adamw-20e_digits.py``,
``configs/lfw/mlp_1xb16-adamw-30e_lfw.py`` in this project) and its Lion twin (written from it by
``tools/misc/adamw_to_lion.py --lr-ratio 3``) with ``tools/train.py`` (the MMEngine
Runner, one process each) for several seeds, reads MMEngine's own logs, and prints
validation accuracy and loss, and training loss, at equal epochs: per seed and as mean
+- standard deviation. ``--plot`` draws validation accuracy per epoch.

Example:
    python projects/lion_evidence/tools/convergence_digits.py --seeds 0 1 2 --plot digits.png
    python projects/lion_evidence/tools/convergence_digits.py --task lfw --plot lfw.png
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # the repository
# task: (configs by optimizer, epochs, what the validation split is, an epoch's steps)
TASKS = {
    'digits': ({'AdamW': 'projects/lion_evidence/configs/digits/mlp_1xb32-adamw-20e_digits.py',
                'Lion (converted)': 'projects/lion_evidence/configs/digits/mlp_1xb32-lion-20e_digits.py'},
               20, 'the 360 held-out digits', '45 iterations of 32 images'),
    'lfw': ({'AdamW': 'projects/lion_evidence/configs/lfw/mlp_1xb16-adamw-30e_lfw.py',
             'Lion (converted)': 'projects/lion_evidence/configs/lfw/mlp_1xb16-lion-30e_lfw.py'},
            30, 'the 50 held-out crops', '10 iterations of 16 crops'),
}
CONFIGS = TASKS['digits'][0]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', choices=list(TASKS), default='digits')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=None,
                        help="default: the task's (digits 20, lfw 30)")
    parser.add_argument('--report', type=int, nargs='+', default=None,
                        help='epochs to tabulate (default: a quarter, half and all)')
    parser.add_argument('--work-dir', default=None, help='keep the runs here')
    parser.add_argument('--plot', default=None, help='PNG of validation accuracy per epoch')
    parser.add_argument('--json', default=None, help='write the numbers here')
    return parser.parse_args(argv)


def train(config: str, seed: int, epochs: int, work_dir: str, args=(),
          options=()) -> Dict[str, dict]:
    """Run tools/train.py (with more ``args`` and ``--cfg-options``); return
    {epoch: {val_accuracy, val_loss, train_loss}}."""
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), osp.join(ROOT, config),
           '--work-dir', work_dir, *args, '--cfg-options', f'randomness.seed={seed}',
           f'train_cfg.max_epochs={epochs}', f'param_scheduler.1.end={epochs}',
           f'param_scheduler.1.T_max={epochs}', f'default_hooks.checkpoint.interval={epochs}',
           *options]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stdout[-2000:]}\n'
                           f'{proc.stderr[-2000:]}')
    (log,) = [osp.join(d, 'vis_data', 'scalars.json')
              for d in sorted(os.scandir(work_dir), key=lambda e: e.name)
              if d.is_dir() and osp.exists(osp.join(d, 'vis_data', 'scalars.json'))][-1:]
    per_epoch: Dict[int, dict] = {}
    train_losses: Dict[int, List[float]] = {}
    with open(log) as f:
        for line in f:
            r = json.loads(line)
            if 'val/accuracy' in r:
                per_epoch.setdefault(int(r['step']), {}).update(
                    val_accuracy=r['val/accuracy'], val_loss=r['val/loss'])
            elif 'loss' in r:
                train_losses.setdefault(int(r['epoch']), []).append(r['loss'])
    for epoch, losses in train_losses.items():
        per_epoch.setdefault(epoch, {})['train_loss'] = statistics.mean(losses)
    return per_epoch


def mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.4f}'
    return f'{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}'


def main(argv=None):
    args = parse_args(argv)
    configs, default_epochs, val_split, epoch_steps = TASKS[args.task]
    args.epochs = args.epochs or default_epochs
    report = args.report or sorted({max(1, args.epochs // 4), max(1, args.epochs // 2),
                                    args.epochs})
    root = args.work_dir or tempfile.mkdtemp(prefix=f'{args.task}_')
    results: Dict[str, Dict[int, dict]] = {}
    for seed in args.seeds:  # interleaved: both optimizers per seed
        for name, config in configs.items():
            work_dir = osp.join(root, f'{name.split()[0].lower()}_seed{seed}')
            print(f'training {name}, seed {seed} ...', flush=True)
            results.setdefault(name, {})[seed] = train(config, seed, args.epochs, work_dir)

    print(f'\n### Per seed (val = {val_split}; train loss = mean logged loss '
          'of the epoch)\n')
    print('| optimizer | seed | ' + ' | '.join(f'val acc @ {e}' for e in report) +
          ' | ' + ' | '.join(f'val loss @ {e}' for e in report) + ' |')
    print('| --- | ---: |' + ' ---: |' * (2 * len(report)))
    for name, seeds in results.items():
        for seed, epochs in seeds.items():
            print(f'| {name} | {seed} | ' +
                  ' | '.join(f"{epochs[e]['val_accuracy']:.4f}" for e in report) + ' | ' +
                  ' | '.join(f"{epochs[e]['val_loss']:.4f}" for e in report) + ' |')
    print(f'\n### Mean +- std over seeds {args.seeds}\n')
    print('| optimizer | epoch | val accuracy | val loss | train loss |')
    print('| --- | ---: | ---: | ---: | ---: |')
    for name, seeds in results.items():
        for e in report:
            cells = [mean_std([s[e][k] for s in seeds.values()])
                     for k in ('val_accuracy', 'val_loss', 'train_loss')]
            print(f'| {name} | {e} | ' + ' | '.join(cells) + ' |')
    if args.plot:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
        for name, seeds in results.items():
            epochs = sorted(next(iter(seeds.values())))
            accs = [[s[e]['val_accuracy'] for s in seeds.values()] for e in epochs]
            ax.plot(epochs, [statistics.mean(a) for a in accs], marker='o', label=name)
            ax.fill_between(epochs, [min(a) for a in accs], [max(a) for a in accs], alpha=0.2)
        ax.set_xlabel(f'epoch ({epoch_steps})')
        ax.set_ylabel('val accuracy (mean, band: min-max over seeds)')
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f'\nwrote {args.plot}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({n: {str(k): v for k, v in s.items()} for n, s in results.items()}, f,
                      indent=1)
    return results


if __name__ == '__main__':
    main()
