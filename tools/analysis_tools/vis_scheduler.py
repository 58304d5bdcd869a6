"""Plot a config's learning rate and beta1 over the iterations, without training.

The config's own optimizer and ``param_scheduler`` are built (on a one-weight model)
and stepped the way MMEngine's ParamSchedulerHook steps them: iteration-based
schedulers after every iteration, epoch-based ones after every epoch. The value of
each iteration is the one its optimizer step uses.

Example:
    python tools/analysis_tools/vis_scheduler.py \\
        configs/lion/demo/rtmdet_tiny_1xb16-lion-24e_shapes.py --out schedule.png
"""
import argparse
import copy
import json
import os.path as osp
import warnings
from typing import Dict, List

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope

from mmlion.utils.data import dataset_configs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--epoch-length', type=int,
                        help='iterations per epoch (default: images in the train annotation '
                        'file / batch size, or 1000 when the file is not here)')
    parser.add_argument('--out', default='schedule.png', help='the PNG to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def epoch_length(cfg: Config) -> int:
    loader = cfg.get('train_dataloader') or {}
    dataset = next((d for _, d in dataset_configs(cfg, ['train_dataloader'])
                    if d.get('ann_file')), {})
    ann = dataset.get('ann_file')
    if ann:
        path = osp.join(dataset.get('data_root') or '', ann)
        if osp.isfile(path) and path.endswith('.json'):
            with open(path) as f:
                images = len(json.load(f).get('images', []))
            if images:
                return max(1, -(-images // int(loader.get('batch_size', 1))))
    print('note: the train annotation file is not here; assuming 1000 iterations per epoch '
          '(set --epoch-length)')
    return 1000


def simulate(cfg: Config, length: int) -> Dict[str, List[float]]:
    """lr and beta1 (group 0) for each iteration of the config's schedule."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    optimizer = wrapper_cfg['optimizer']
    if 'ZeroRedundancyOptimizer' in str(optimizer.get('type')):
        # The schedule does not depend on sharding; plot the inner optimizer.
        optimizer['type'] = optimizer.pop('optimizer_type', 'Lion')
    wrapper_cfg['type'] = 'OptimWrapper'  # AmpOptimWrapper needs a GPU to be built
    wrapper_cfg.pop('loss_scale', None)
    wrapper_cfg.pop('paramwise_cfg', None)
    wrapper = build_optim_wrapper(torch.nn.Linear(1, 1, bias=False), wrapper_cfg)
    train_cfg = cfg.get('train_cfg') or {}
    by_epoch = train_cfg.get('by_epoch', train_cfg.get('type') != 'IterBasedTrainLoop')
    if by_epoch:
        epochs, length = train_cfg['max_epochs'], length
    else:
        epochs, length = 1, train_cfg['max_iters']
    schedulers = []
    for s in cfg.get('param_scheduler') or []:
        s = copy.deepcopy(dict(s))
        s.setdefault('by_epoch', by_epoch)
        schedulers.append(PARAM_SCHEDULERS.build(
            s, default_args=dict(optimizer=wrapper, epoch_length=length)))
    group = wrapper.optimizer.param_groups[0]
    values: Dict[str, List[float]] = dict(lr=[], beta1=[])
    # Stepping schedulers with no optimizer step in between is the point here.
    warnings.filterwarnings('ignore', message=r'Detected call of `scheduler.step\(\)`')
    for _ in range(epochs):
        for _ in range(length):
            values['lr'].append(float(group['lr']))
            betas = group.get('betas')
            values['beta1'].append(float(betas[0]) if betas else float(group.get('momentum', 0)))
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    values['epoch_length'] = length if by_epoch else None
    return values


def plot(values, title: str, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), dpi=100, sharex=True)
    iters = range(1, len(values['lr']) + 1)
    axes[0].plot(iters, values['lr'], color='tab:blue')
    axes[0].set_ylabel('learning rate')
    axes[0].ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
    axes[1].plot(iters, values['beta1'], color='tab:orange')
    axes[1].set_ylabel('beta1 (momentum)')
    axes[1].set_xlabel('iteration' + (f" ({values['epoch_length']} per epoch)"
                                      if values['epoch_length'] else ''))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    values = simulate(cfg, args.epoch_length or epoch_length(cfg))
    lrs = values['lr']
    n = len(lrs)
    print(f'{n} iterations; lr: first {lrs[0]:.3g}, peak {max(lrs):.3g} at iteration '
          f'{lrs.index(max(lrs)) + 1}, last {lrs[-1]:.3g}; beta1: {min(values["beta1"]):.3g} '
          f'to {max(values["beta1"]):.3g}')
    plot(values, osp.basename(args.config), args.out)
    print(f'wrote {args.out}')
    return values


if __name__ == '__main__':
    main()
