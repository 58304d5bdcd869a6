"""Write a Lion config that inherits an AdamW (or Adam, or SGD) config.

The paper's guidance (Chen et al. 2023, "Symbolic Discovery of Optimization
Algorithms", section 5 and appendix): Lion's update is a sign, so every element moves
by the full learning rate; its lr must be 3-10x smaller than AdamW's. Weight decay
then has to be 3-10x larger, so that lr * weight_decay, the strength of the decoupled
decay per step, stays what it was. betas=(0.9, 0.99) is the default and
(0.95, 0.98) helps stability. The default ratio follows the total batch the source was
tuned for, from mmlion's sweeps of both optimizers' lr per batch (docs/evidence.md, "The
best lr per batch"): 3 with betas (0.95, 0.98) below batch 64 (on the Shapes detector
at batch 16, AdamW's lr / 3 is Lion's best lr from AdamW's recipe, and 1.3 points below
it from AdamW's own best, 4x the recipe on a flat top), 6 with betas (0.95, 0.98) from
64 (the detector's two tuned optima at batch 64), and the paper's 10 from 256 (the
digits' tuned optima are 8.5x apart from batch 16 to 256). Give
--lr-ratio to choose yourself.

What the converter does:
  * lr / ratio (AdamW, Adam); SGD's lr is first put on AdamW's scale (/ 100, the ratio
    MMDetection's own R-50 recipes use: Faster R-CNN SGD 0.02 vs AdamW 2e-4);
  * weight_decay chosen so that lr * weight_decay is unchanged (AdamW: x ratio);
  * betas (0.9, 0.99), or (0.95, 0.98) with --stable; eps and amsgrad dropped;
  * every lr-valued scheduler field (eta_min, eta_max, max_lr, min_value of lr
    schedulers) scaled like lr; factors and ratios kept;
  * auto_scale_lr: the total batch the lr was tuned for (base_batch_size), and Lion's
    rule, named (mmlion.engine.lr_scaling.LION_DEFAULT_RULE, from the batch-size
    evidence in docs/evidence.md): --auto-scale-lr then scales the lr to the effective
    batch, accumulative_counts included;
  * paramwise_cfg, clip_grad, the OptimWrapper type and everything else inherited.
It prints a table of what changed and why, and loads the new config to check it. It
never replaces a file it did not write (the stamp rule of mmlion.utils.ownership).

Example:
    python tools/misc/adamw_to_lion.py mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py \\
        --lr-ratio 10 --out configs/lion/rtmdet/my_rtmdet_tiny_lion.py
"""
import argparse
import copy
import importlib
import os
import os.path as osp
import re
import sys
from typing import List, NamedTuple, Optional, Tuple

from mmengine.config import Config

SOURCES = ('AdamW', 'Adam', 'SGD')
SGD_TO_ADAMW = 100.0
LR_FIELDS = ('eta_min', 'eta_max', 'max_lr', 'min_value', 'eta_min_restart')
BETAS = (0.9, 0.99)
STABLE_BETAS = (0.95, 0.98)
SMALL_BATCH = 64  # below it, the paper finds Lion's edge over AdamW fades (sec. 5)


class Default(NamedTuple):
    """The default conversion from a total batch of ``from_batch`` up."""
    from_batch: int
    ratio: float
    stable: bool  # STABLE_BETAS, as convert(stable=True) writes them; else BETAS
    evidence: str

    @property
    def betas(self) -> tuple:
        return STABLE_BETAS if self.stable else BETAS


# One row per range of total batch, each from a sweep (docs/evidence.md).
DEFAULTS = (
    Default(0, 3.0, True, "on the Shapes detector at batch 16, AdamW's recipe lr "
            "(0.004) / 3 is Lion's best (0.00133); AdamW's best (0.016, on a top flat from "
            "0.004) / 3 is 1.3 points below it; / 10 from the recipe lost 5 points"),
    Default(SMALL_BATCH, 6.0, True, 'on the Shapes detector at batch 64, the tuned '
            'optima are 6x apart (AdamW 0.064, Lion 0.0107)'),
    Default(256, 10.0, False, "the paper's large-batch recipes; on the digits the tuned "
            'optima are 8.5x apart from batch 16 to 256'),
)


def default_for(batch: int) -> Default:
    """The row of :data:`DEFAULTS` for a total batch (the last one when it is unknown)."""
    if batch <= 0:
        return DEFAULTS[-1]
    return [row for row in DEFAULTS if batch >= row.from_batch][-1]


def resolve(config: str) -> Tuple[str, str]:
    """(path on disk, how a child config names it in ``_base_``)."""
    if '::' in config:
        package, relative = config.split('::', 1)
        root = osp.dirname(importlib.import_module(package).__file__)
        path = osp.join(root, '.mim', 'configs', relative)
        if not osp.isfile(path):
            raise FileNotFoundError(f'CONFIG={config!r}: no such config {path!r}')
        return path, config
    if not osp.isfile(config):
        raise FileNotFoundError(f'CONFIG={config!r}: no such file')
    return osp.abspath(config), osp.abspath(config)


def short_type(type_name) -> str:
    name = type_name if isinstance(type_name, str) else getattr(type_name, '__name__', '')
    return name.split('.')[-1]


def total_batch_size(cfg: Config, path: str) -> Tuple[int, str]:
    match = re.search(r'(\d+)xb(\d+)', osp.basename(path))
    if match:
        n, b = int(match.group(1)), int(match.group(2))
        return n * b, f'{n} process{"es" if n > 1 else ""} x {b} images, from the file name'
    scale = cfg.get('auto_scale_lr') or {}
    if 'base_batch_size' in scale:
        return int(scale['base_batch_size']), 'auto_scale_lr.base_batch_size'
    batch = (cfg.get('train_dataloader') or {}).get('batch_size', 0)
    return int(batch), 'train_dataloader.batch_size (one process)'


def tidy(value: float) -> float:
    """6 significant digits: 0.03, not 0.030000000000000002."""
    return float(f'{value:.6g}')


def fmt(value) -> str:
    return f'{value:.6g}' if isinstance(value, float) else repr(value)


def convert(cfg: Config, ratio: float, stable: bool, ratio_why: str):
    """Return (new optimizer dict, new param_scheduler list or None, rows, warnings)."""
    wrapper = cfg.get('optim_wrapper')
    if not wrapper or 'optimizer' not in wrapper:
        raise ValueError('the config has no optim_wrapper.optimizer to convert'
                         + (' (an OptimWrapperDict of several optimizers is not supported)'
                            if wrapper else ''))
    source = dict(wrapper['optimizer'])
    kind = short_type(source.get('type'))
    if kind not in SOURCES:
        raise ValueError(f'optim_wrapper.optimizer.type={source.get("type")!r}: the converter '
                         f'knows {list(SOURCES)}')
    rows: List[Tuple[str, str, str, str]] = [('optimizer', kind, 'Lion', 'the conversion')]
    warnings: List[str] = []
    lr = float(source.get('lr', 1e-3 if kind != 'SGD' else 0.01))
    scale = 1.0 / ratio if kind != 'SGD' else 1.0 / (SGD_TO_ADAMW * ratio)
    new_lr = tidy(lr * scale)
    why = (f'lr / {ratio:g} ({ratio_why})' if kind != 'SGD'
           else f'lr / {SGD_TO_ADAMW:g} (to AdamW scale) / {ratio:g} ({ratio_why})')
    rows.append(('lr', fmt(lr), fmt(new_lr), why))
    wd = float(source.get('weight_decay', 0.0))
    new_wd = tidy(wd * lr / new_lr)
    rows.append(('weight_decay', fmt(wd), fmt(new_wd),
                 f'keeps lr * weight_decay = {lr * wd:.3g}, the decay per step'))
    if wd == 0:
        warnings.append('the source has no weight decay; Lion usually wants some (the paper '
                        'uses 3-10x AdamW\'s): consider setting optim_wrapper.optimizer.'
                        'weight_decay')
    if kind in ('Adam', 'SGD') and wd:
        warnings.append(f'{kind}\'s weight_decay is an L2 penalty added to the gradient; '
                        f'Lion\'s is decoupled (AdamW-style). The converter keeps lr * wd; '
                        f'check the regularisation')
    betas = STABLE_BETAS if stable else BETAS
    old_betas = '-' if kind == 'SGD' else fmt(tuple(source.get('betas', (0.9, 0.999))))
    rows.append(('betas', old_betas, fmt(betas),
                 '--stable: (0.95, 0.98) for stability' if stable else
                 "Lion's defaults (use --stable for (0.95, 0.98))"))
    for dropped in ('eps', 'amsgrad', 'momentum', 'nesterov', 'dampening', 'foreach', 'fused',
                    'capturable', 'differentiable'):
        if dropped in source:
            rows.append((dropped, fmt(source[dropped]), '-', 'Lion has no such setting'))
    optimizer = dict(type='Lion', lr=new_lr, betas=betas, weight_decay=new_wd)
    for kept in ('maximize',):
        if kept in source:
            optimizer[kept] = source[kept]

    schedulers = cfg.get('param_scheduler')
    new_schedulers = None
    if schedulers:
        listed = isinstance(schedulers, (list, tuple))
        new_schedulers = [copy.deepcopy(dict(s)) for s in (schedulers if listed else [schedulers])]
        for index, s in enumerate(new_schedulers):
            if 'momentum' in short_type(s.get('type')).lower():
                warnings.append(f'param_scheduler[{index}] ({s["type"]}) schedules beta1 with '
                                f'values tuned for {kind}; check them for Lion')
                continue
            for field in LR_FIELDS:
                if isinstance(s.get(field), (int, float)) and s[field]:
                    old = s[field]
                    s[field] = tidy(old * scale)
                    rows.append((f'param_scheduler[{index}].{field}', fmt(old), fmt(s[field]),
                                 'an lr: scaled like lr'))
    for key in ('paramwise_cfg', 'clip_grad'):
        if wrapper.get(key):
            rows.append((f'optim_wrapper.{key}', 'set', 'kept', 'inherited unchanged'))
    return optimizer, new_schedulers, rows, warnings


def scaling_rule(cfg: Config, batch: int) -> Tuple[dict, tuple]:
    """The converted config's auto_scale_lr, and its row of the table."""
    from mmlion.engine.lr_scaling import LION_DEFAULT_RULE, rule_label
    before = (cfg.get('auto_scale_lr') or {}).get('rule')
    scale = dict(base_batch_size=batch, rule=LION_DEFAULT_RULE) if batch > 0 else \
        dict(rule=LION_DEFAULT_RULE)
    return scale, ('auto_scale_lr.rule',
                   "MMEngine's linear" if before is None else rule_label(before),
                   rule_label(LION_DEFAULT_RULE),
                   "Lion's rule, from mmlion's batch-size evidence (docs/lr_scaling.md); "
                   '--auto-scale-lr counts accumulative_counts too')


def render(base: str, imports: List[str], optimizer: dict, schedulers: Optional[list],
           ratio: float, stable: bool, source: str, auto_scale_lr: dict) -> str:
    lines = [
        f'# Converted from {source}',
        f'# by tools/misc/adamw_to_lion.py --lr-ratio {ratio:g}{" --stable" if stable else ""}:',
        '# lr / ratio, weight decay such that lr * weight_decay stays the same, and',
        '# Lion\'s betas; everything else is inherited.',
        f'_base_ = {base!r}',
        '',
        f'custom_imports = dict(imports={imports!r}, allow_failed_imports=False)',
        'optim_wrapper = dict(optimizer=dict(',
        f"    _delete_=True, type='Lion', lr={optimizer['lr']!r}, "
        f"betas={optimizer['betas']!r},",
        f"    weight_decay={optimizer['weight_decay']!r}"
        + ''.join(f', {k}={v!r}' for k, v in optimizer.items()
                  if k not in ('type', 'lr', 'betas', 'weight_decay')) + '))',
    ]
    if schedulers is not None:
        lines.append('param_scheduler = [')
        for s in schedulers:
            lines.append(f'    dict({", ".join(f"{k}={v!r}" for k, v in s.items())}),')
        lines.append(']')
    scale = ', '.join(f'{k}={v!r}' for k, v in auto_scale_lr.items())
    lines += ["# --auto-scale-lr scales the lr from base_batch_size by Lion's rule.",
              f'auto_scale_lr = dict({scale})']
    return '\n'.join(lines) + '\n'


def default_out(path: str, spec: str, ratio: float) -> str:
    stem = osp.splitext(osp.basename(path))[0]
    name = re.sub('adamw|adam|sgd', 'lion', stem) if re.search('adamw|adam|sgd', stem) else \
        f'{stem}_lion'
    folder = osp.dirname(path) if '::' not in spec and os.access(osp.dirname(path), os.W_OK) \
        else '.'
    return osp.join(folder, f'{name}-r{ratio:g}.py')


def print_table(rows, warnings, batch: int, batch_source: str) -> None:
    print('| setting | before | Lion | why |')
    print('| --- | --- | --- | --- |')
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    print(f'\ntotal batch size: {batch} ({batch_source})')
    for w in warnings:
        print(f'warning: {w}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the AdamW/Adam/SGD config: a path or pkg::path '
                        '(e.g. mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py)')
    parser.add_argument('--lr-ratio', type=float, default=None,
                        help="AdamW's lr / Lion's lr; the paper uses 3-10. Weight decay is "
                        'multiplied by the same ratio. Default: by the total batch, '
                        + '; '.join(f'from {row.from_batch}, {row.ratio:g} with betas {row.betas}'
                                    for row in DEFAULTS))
    parser.add_argument('--stable', action='store_true',
                        help='betas (0.95, 0.98) instead of (0.9, 0.99)')
    parser.add_argument('--out', help='where to write the Lion config (default: next to the '
                        'source, or in the current folder for pkg:: configs)')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.lr_ratio is not None and not args.lr_ratio > 0:
        raise SystemExit(f'--lr-ratio={args.lr_ratio}: must be > 0 (the paper uses 3-10)')
    path, spec = resolve(args.config)
    cfg = Config.fromfile(path)
    batch, batch_source = total_batch_size(cfg, path)
    warnings: List[str] = []
    if args.lr_ratio is None:
        default = default_for(batch)
        args.lr_ratio = default.ratio
        args.stable = args.stable or default.stable
        ratio_why = f'the default at total batch {batch}: {default.evidence} (docs/evidence.md)'
    else:
        ratio_why = 'given by --lr-ratio'
    if 0 < batch < SMALL_BATCH:
        warnings.append(f'total batch size {batch} is below {SMALL_BATCH}, where Lion\'s edge '
                        f'over AdamW fades (paper, sec. 5); tuned, it ties AdamW on the Shapes '
                        f'detector at batch 16 (docs/evidence.md)')
    if not 3 <= args.lr_ratio <= 10:
        warnings.append(f'--lr-ratio {args.lr_ratio:g} is outside the paper\'s 3-10')
    optimizer, schedulers, rows, conversion_warnings = convert(cfg, args.lr_ratio, args.stable,
                                                                 ratio_why)
    auto_scale_lr, scaling_row = scaling_rule(cfg, batch)
    rows.append(scaling_row)
    warnings = conversion_warnings + warnings
    out = args.out or default_out(path, spec, args.lr_ratio)
    base = spec if '::' in spec else osp.relpath(path, osp.dirname(osp.abspath(out)))
    imports = (cfg.get('custom_imports') or {}).get('imports') or []
    imports = [imports] if isinstance(imports, str) else list(imports)  # one or a list
    if 'mmlion' not in imports:
        imports.append('mmlion')
    shown = spec if '::' in spec else osp.relpath(path)
    text = render(base, imports, optimizer, schedulers, args.lr_ratio, args.stable, shown,
                  auto_scale_lr)
    from mmlion.utils.ownership import NotOwnedError, write_owned
    try:  # replaces only a config this tool wrote before
        write_owned(text.encode(), out)
    except NotOwnedError as e:
        raise SystemExit(f'--out={out!r}: {e}')
    converted = Config.fromfile(out)  # it must load, and say Lion
    assert converted.optim_wrapper.optimizer.type == 'Lion'
    print(f'{spec} -> {out}\n')
    print_table(rows, warnings, batch, batch_source)
    return out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
