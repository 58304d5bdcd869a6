"""Train a detector (or any MMEngine model) from a config, the OpenMMLab way.

Like MMDetection's tools/train.py, plus what mmlion users need here: the config is
checked before anything is built (mmlion.utils.check_config), and ``--launcher
pytorch`` works on CPU-only machines (gloo) as well as on GPUs (nccl). It never
writes data: the demo's Shapes dataset is made by
tools/dataset_converters/generate_shapes.py.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmlion.cli import (add_config_check_hook, check_config, hold_work_dir, setup_distributed,
                        teardown_distributed, torchrun_restart)

# --amp turns each wrapper into its mixed-precision twin.
AMP_WRAPPERS = {'OptimWrapper': 'AmpOptimWrapper',
                'mmlion.GuardedOptimWrapper': 'mmlion.GuardedAmpOptimWrapper'}


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale the lr by auto_scale_lr's rule (auto_scale_lr.rule: "
                        "'linear' or 'sqrt'); for Lion, to the effective batch (processes x "
                        "batch x accumulative_counts)")
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or from the latest one in the work dir '
        'when no path is given')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs such as '
        'optim_wrapper.optimizer.lr=1e-4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args) -> Config:
    """Fold the command-line arguments into the config."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper in AMP_WRAPPERS.values():
            print('AMP training is already enabled in your config.')
        else:
            if optim_wrapper not in AMP_WRAPPERS:
                raise ValueError(f'--amp needs optim_wrapper.type to be one of '
                                 f'{sorted(AMP_WRAPPERS)}, got {optim_wrapper!r}')
            cfg.optim_wrapper.type = AMP_WRAPPERS[optim_wrapper]
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = dict('
                               'base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True
    strategy = cfg.get('strategy')
    if isinstance(strategy, dict) and strategy.get('type') in FIXED_STRATEGIES:
        strategy['type'] = FIXED_STRATEGIES[strategy['type']]
    restart = torchrun_restart()
    if restart > 0 and args.resume is None:
        # torchrun restarted the workers after a failure (tools/dist_train.sh with
        # MAX_RESTARTS): go on from the work dir's last checkpoint.
        print(f'torchrun restart {restart}: resuming from the last checkpoint in '
              f'{cfg.work_dir}')
        args.resume = 'auto'
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


# MMEngine 0.10.7's FlexibleRunner strategies that break on current torch or without a
# GPU, and mmlion's fixed subclasses (mmlion/engine/strategies/).
FIXED_STRATEGIES = {'FSDPStrategy': 'mmlion.FSDPStrategy',
                    'DeepSpeedStrategy': 'mmlion.DeepSpeedStrategy'}


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    # Fail now, naming the key and value, rather than minutes into the run.
    check_config(cfg)
    add_config_check_hook(cfg)  # and what needs the model, checkpoint or metrics, then
    hold_work_dir(cfg.work_dir, args.launcher)  # one run per work dir
    setup_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    teardown_distributed()


if __name__ == '__main__':
    main()
