"""The demo detector over several seeds: final bbox mAP on Shapes, per seed and as mean
+- standard deviation, and wall time, for each config given (seeds interleaved, one run
at a time, through tools/train.py).

A config given as ``path:rule`` trains with ``--auto-scale-lr`` and that
``auto_scale_lr.rule``; ``--batch-size`` trains every config at that batch, with the
warmup kept at the same number of epochs.

Example (the AdamW twin against the converted Lion, seeds 0-2, about 30 minutes here):
    python projects/lion_evidence/tools/seeds_shapes.py \\
        configs/lion/demo/rtmdet_tiny_1xb16-adamw-24e_shapes.py \\
        configs/lion/demo/rtmdet_tiny_1xb16-lion-converted-24e_shapes.py --seeds 0 1 2

Example (batch 64, lr scaled from the batch-16 recipes, about 60 minutes here):
    python projects/lion_evidence/tools/seeds_shapes.py --batch-size 64 \\
        configs/lion/demo/rtmdet_tiny_1xb16-adamw-24e_shapes.py:linear \\
        configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py:linear \\
        configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py:sqrt
"""
import argparse
import glob
import json
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # the repository


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=24)
    parser.add_argument('--batch-size', type=int, default=None,
                        help="train at this batch (default: each config's)")
    parser.add_argument('--work-dir', default=None, help='keep the runs here')
    parser.add_argument('--json', default=None, help='write the numbers here')
    return parser.parse_args(argv)


def batch_options(config: str, batch: int) -> list:
    """--cfg-options that train ``config`` at ``batch``, its warmup (the first
    scheduler, by iteration) lasting as many epochs as at the config's own batch."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    warmup = cfg.param_scheduler[0]
    own_batch = cfg.train_dataloader.batch_size
    return [f'train_dataloader.batch_size={batch}',
            f'param_scheduler.0.end={max(1, round(warmup.end * own_batch / batch))}']


def train(spec: str, seed: int, epochs: int, work_dir: str, batch=None) -> dict:
    """One run of ``config[:rule]``; its last validation's bbox mAP and its wall time."""
    config, _, rule = spec.partition(':')
    options = [f'auto_scale_lr.rule={rule}'] if rule else []
    if batch is not None:
        options += batch_options(config, batch)
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), config, '--work-dir', work_dir,
           *(['--auto-scale-lr'] if rule else []),
           '--cfg-options', f'randomness.seed={seed}', f'train_cfg.max_epochs={epochs}',
           f'train_cfg.val_interval={epochs}', *options]
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
    (log,) = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1:]
    with open(log) as f:
        scores = [json.loads(line) for line in f if 'coco/bbox_mAP' in line]
    return dict(mAP=scores[-1]['coco/bbox_mAP'], seconds=time.time() - start)


def main(argv=None):
    args = parse_args(argv)
    root = args.work_dir or tempfile.mkdtemp(prefix='seeds_shapes_')
    results = {config: {} for config in args.configs}
    for seed in args.seeds:
        for index, config in enumerate(args.configs):
            print(f'seed {seed}: training {config} ...', flush=True)
            name = osp.basename(config).replace('.py', '').replace(':', '_')
            work_dir = osp.join(root, f'{index}_{name}_seed{seed}')
            results[config][seed] = train(config, seed, args.epochs, work_dir, args.batch_size)
    print('\n| config | ' + ' | '.join(f'seed {s}' for s in args.seeds) +
          ' | mean +- std | wall time (mean) |')
    print('| --- |' + ' ---: |' * (len(args.seeds) + 2))
    for config, runs in results.items():
        maps = [runs[s]['mAP'] for s in args.seeds]
        spread = f' +- {statistics.stdev(maps):.3f}' if len(maps) > 1 else ''
        minutes = statistics.mean(r['seconds'] for r in runs.values()) / 60
        print(f'| `{osp.basename(config)}` | ' + ' | '.join(f'{m:.3f}' for m in maps) +
              f' | {statistics.mean(maps):.3f}{spread} | {minutes:.1f} min |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
