"""The paper's batch-size claim (Chen et al. 2023, sec. 5: Lion gains more over AdamW as
the batch grows), tested on data no one here made: scikit-learn's UCI digits.

For each batch size, AdamW and its converted Lion twin (the configs of
``convergence_digits.py``) train for the same epochs, with the lr scaled linearly from
the configs' batch of 32 (``tools/train.py --auto-scale-lr``, what ``auto_scale_lr``
does) and one epoch of warmup, over several seeds, interleaved. Prints validation
accuracy and loss (mean +- std) per batch size, and plots both against the batch size.

Example:
    python projects/lion_evidence/tools/batch_size_digits.py --batch-sizes 16 64 256 \\
        --seeds 0 1 2 --plot docs/figures/digits_batch_size.png
"""
import argparse
import json
import math
import os.path as osp
import statistics
import tempfile
from typing import Dict, List

from projects.lion_evidence.tools.convergence_digits import CONFIGS, mean_std, train

TRAIN_IMAGES = 1437


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[16, 64, 256])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--work-dir', default=None, help='keep the runs here')
    parser.add_argument('--plot', default=None, help='PNG: accuracy and loss per batch size')
    parser.add_argument('--json', default=None, help='write the numbers here')
    return parser.parse_args(argv)


def run_all(args) -> Dict[str, Dict[int, List[dict]]]:
    """{optimizer: {batch: [final epoch's numbers per seed]}}."""
    root = args.work_dir or tempfile.mkdtemp(prefix='digits_batch_')
    results: Dict[str, Dict[int, List[dict]]] = {name: {} for name in CONFIGS}
    for batch in args.batch_sizes:
        warmup = math.ceil(TRAIN_IMAGES / batch)  # one epoch of iterations
        for seed in args.seeds:
            for name, config in CONFIGS.items():  # interleaved
                print(f'batch {batch}, seed {seed}: training {name} ...', flush=True)
                work_dir = osp.join(root, f'{name.split()[0].lower()}_b{batch}_seed{seed}')
                epochs = train(config, seed, args.epochs, work_dir, args=['--auto-scale-lr'],
                               options=[f'train_dataloader.batch_size={batch}',
                                        f'param_scheduler.0.end={warmup}'])
                results[name].setdefault(batch, []).append(epochs[args.epochs])
    return results


def main(argv=None):
    args = parse_args(argv)
    results = run_all(args)
    print(f'\n### After {args.epochs} epochs, mean +- std over seeds {args.seeds} '
          '(val = the 360 held-out digits)\n')
    print('| batch | optimizer | val accuracy | val loss | train loss |')
    print('| ---: | --- | ---: | ---: | ---: |')
    for batch in args.batch_sizes:
        for name in CONFIGS:
            runs = results[name][batch]
            print(f'| {batch} | {name} | ' + ' | '.join(
                mean_std([r[k] for r in runs])
                for k in ('val_accuracy', 'val_loss', 'train_loss')) + ' |')
    if args.plot:
        plot(results, args)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({n: {str(b): runs for b, runs in r.items()} for n, r in results.items()},
                      f, indent=1)
    return results


def plot(results, args) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    for ax, key, label in zip(axes, ('val_accuracy', 'val_loss'),
                              ('val accuracy', 'val loss')):
        for name, by_batch in results.items():
            values = [[r[key] for r in by_batch[b]] for b in args.batch_sizes]
            ax.errorbar(args.batch_sizes, [statistics.mean(v) for v in values],
                        yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in values],
                        marker='o', capsize=4, label=name)
        ax.set_xscale('log', base=2)
        ax.set_xticks(args.batch_sizes, [str(b) for b in args.batch_sizes])
        ax.set_xlabel(f'batch size (lr scaled linearly from 32; {args.epochs} epochs)')
        ax.set_ylabel(f'{label} (mean +- std over {len(args.seeds)} seeds)')
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot)
    print(f'\nwrote {args.plot}')


if __name__ == '__main__':
    main()
