"""Which learning-rate scaling rule fits Lion? The paper's batch-size claim (Chen et al.
2023, sec. 5: Lion gains more over AdamW as the batch grows), on data no one here made:
scikit-learn's UCI digits (``--task digits``) or scikit-image's LFW subset
(``--task lfw``).

For each batch size and seed, interleaved, it trains the task's AdamW config with
MMEngine's linear rule and its converted Lion twin three ways: lr left as tuned
(``none``), scaled linearly and scaled by the square root of the batch ratio
(``tools/train.py --auto-scale-lr`` with ``auto_scale_lr.rule``), all from the configs'
``base_batch_size``, for the same epochs, with one epoch of warmup. It prints validation
accuracy and loss (mean +- std), Lion's gap to AdamW per rule and batch, and plots
accuracy and loss against the batch size.

Example (digits: about 10 minutes here; lfw: about 4):
    python projects/lion_evidence/tools/batch_size_sweep.py --task digits \\
        --batch-sizes 16 64 256 1024 --seeds 0 1 2 --plot docs/images/digits_batch_size.png
"""
import argparse
import json
import math
import os.path as osp
import statistics
import tempfile
from typing import Dict, List, NamedTuple, Tuple

from projects.lion_evidence.tools.convergence_digits import TASKS, mean_std, train

TRAIN_IMAGES = {'digits': 1437, 'lfw': 150}
DEFAULT_BATCH_SIZES = {'digits': [16, 64, 256, 1024], 'lfw': [16, 64, 150]}


class Arm(NamedTuple):
    optimizer: str  # a key of the task's configs
    rule: str       # 'none' (lr as tuned), or an auto_scale_lr rule

    @property
    def name(self) -> str:
        return f'{self.optimizer.split()[0]} ({self.rule})'

    def train_args(self) -> Tuple[List[str], List[str]]:
        """tools/train.py's arguments and --cfg-options for this arm."""
        if self.rule == 'none':
            return [], []
        return ['--auto-scale-lr'], [f'auto_scale_lr.rule={self.rule}']


def arms(task: str) -> List[Arm]:
    adamw, lion = TASKS[task][0]
    return [Arm(adamw, 'linear'), Arm(lion, 'none'), Arm(lion, 'linear'), Arm(lion, 'sqrt')]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', choices=list(TRAIN_IMAGES), default='digits')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=None,
                        help='default: digits 16 64 256 1024; lfw 16 64 150 (all of it)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=None,
                        help="default: the task's (digits 20, lfw 30)")
    parser.add_argument('--work-dir', default=None, help='keep the runs here')
    parser.add_argument('--plot', default=None, help='PNG: accuracy and loss per batch size')
    parser.add_argument('--json', default=None, help='write the numbers here')
    args = parser.parse_args(argv)
    args.batch_sizes = args.batch_sizes or DEFAULT_BATCH_SIZES[args.task]
    args.epochs = args.epochs or TASKS[args.task][1]
    too_big = [b for b in args.batch_sizes if b > TRAIN_IMAGES[args.task]]
    if too_big:
        parser.error(f'--batch-sizes {too_big}: {args.task} has only '
                     f'{TRAIN_IMAGES[args.task]} training images')
    return args


def run_all(args) -> Dict[str, Dict[int, List[dict]]]:
    """{arm name: {batch: [final epoch's numbers per seed]}}."""
    root = args.work_dir or tempfile.mkdtemp(prefix=f'{args.task}_batch_')
    configs = TASKS[args.task][0]
    results: Dict[str, Dict[int, List[dict]]] = {arm.name: {} for arm in arms(args.task)}
    for batch in args.batch_sizes:
        warmup = math.ceil(TRAIN_IMAGES[args.task] / batch)  # one epoch of iterations
        for seed in args.seeds:
            for arm in arms(args.task):  # interleaved
                print(f'batch {batch}, seed {seed}: training {arm.name} ...', flush=True)
                extra_args, options = arm.train_args()
                work_dir = osp.join(root, f'{arm.name.split()[0].lower()}_{arm.rule}_'
                                    f'b{batch}_seed{seed}')
                epochs = train(configs[arm.optimizer], seed, args.epochs, work_dir,
                               args=extra_args,
                               options=[f'train_dataloader.batch_size={batch}',
                                        f'param_scheduler.0.end={warmup}', *options])
                results[arm.name].setdefault(batch, []).append(epochs[args.epochs])
    return results


def _mean(runs: List[dict], key: str) -> float:
    return statistics.mean(r[key] for r in runs)


def main(argv=None):
    args = parse_args(argv)
    results = run_all(args)
    adamw = arms(args.task)[0].name
    print(f'\n### {args.task}: after {args.epochs} epochs, mean +- std over seeds '
          f'{args.seeds} (val = {TASKS[args.task][2]})\n')
    print('| batch | optimizer (lr rule) | val accuracy | val loss | train loss |')
    print('| ---: | --- | ---: | ---: | ---: |')
    for batch in args.batch_sizes:
        for name, by_batch in results.items():
            print(f'| {batch} | {name} | ' + ' | '.join(
                mean_std([r[k] for r in by_batch[batch]])
                for k in ('val_accuracy', 'val_loss', 'train_loss')) + ' |')
    print("\n### Lion's val accuracy minus AdamW's (linear), by batch\n")
    lions = [name for name in results if name != adamw]
    print('| batch | ' + ' | '.join(lions) + ' |')
    print('| ---: |' + ' ---: |' * len(lions))
    for batch in args.batch_sizes:
        base = _mean(results[adamw][batch], 'val_accuracy')
        print(f'| {batch} | ' + ' | '.join(
            f"{_mean(results[n][batch], 'val_accuracy') - base:+.4f}" for n in lions) + ' |')
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
        ax.set_xlabel(f'batch size ({args.task}, {args.epochs} epochs)')
        ax.set_ylabel(f'{label} (mean +- std over {len(args.seeds)} seeds)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot)
    print(f'\nwrote {args.plot}')


if __name__ == '__main__':
    main()
