"""Time one optimizer step and count optimizer state, for Lion and its peers.

Times mmlion's Lion (each implementation) against torch's AdamW (foreach, fused),
SGD with momentum, and lion-pytorch's and timm's Lion when they are installed, on
the parameter shapes of ResNet-50 and ViT-B/16 (one group, and one group per
parameter as MMEngine's ``paramwise_cfg`` makes) and on 2000 small tensors. The
steps are interleaved (one step of each optimizer per round) and the median is
reported, so machine noise hits every row alike. The machine's memory bandwidth
is measured in the same process and each step is shown as a fraction of its
bandwidth limit: a step reads param and grad and writes param (3 x the param's
bytes) and reads and writes its state (2 x the state's bytes): Lion moves 20 bytes
per fp32 parameter, AdamW 28, SGD 20.

On a GPU (``--device cuda``) steps are timed with CUDA events, the limit comes from
a device-to-device copy, ViT-L/16 is added, and the rows are the GPU ones: mmlion's
Triton kernel (``fused=True``) with and without the guard and a GradScaler, torch's
fused AdamW and SGD, lion-pytorch with and without its Triton kernel, timm, and
bitsandbytes' and DeepSpeed's Lion where they import.

``--host-overhead`` times what the fused GPU step costs the host alone: mmlion's
``Lion(fused=True)`` on CPU tensors routed through the CUDA path's host code, the
Triton launch replaced by a no-op, one group per parameter; beside it, torch's fused
AdamW CPU step on as many one-element tensors, as a yardstick of a loop over the
parameters with nothing to compute. ``--buckets K`` gives the groups K different
learning rates, as mmpretrain's layer-wise lr decay does: K launches per step.

Example::

    python tools/analysis_tools/benchmark_optimizers.py --threads 2 --plot bench.png
    python tools/analysis_tools/benchmark_optimizers.py --host-overhead
    python tools/analysis_tools/benchmark_optimizers.py --device cuda --dtype bf16
"""
import argparse
import importlib.util
import json
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch


def resnet50_shapes() -> List[Tuple[int, ...]]:
    """torchvision's ResNet-50 parameter shapes: 161 tensors, 25.6 M parameters."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    inplanes = 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for block in range(blocks):
            shapes += [(planes, inplanes, 1, 1), (planes,), (planes,),
                       (planes, planes, 3, 3), (planes,), (planes,),
                       (planes * 4, planes, 1, 1), (planes * 4,), (planes * 4,)]
            if block == 0:
                shapes += [(planes * 4, inplanes, 1, 1), (planes * 4,), (planes * 4,)]
            inplanes = planes * 4
    return shapes + [(1000, 2048), (1000,)]


def vit_shapes(d: int, hidden: int, depth: int) -> List[Tuple[int, ...]]:
    """timm's ViT parameter shapes for patch 16, 224 px, 1000 classes."""
    shapes = [(1, 1, d), (1, 197, d), (d, 3, 16, 16), (d,)]
    for _ in range(depth):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,),
                   (hidden, d), (hidden,), (d, hidden), (d,)]
    return shapes + [(d,), (d,), (1000, d), (1000,)]


def vit_b16_shapes() -> List[Tuple[int, ...]]:
    """vit_base_patch16_224: 152 tensors, 86.6 M parameters."""
    return vit_shapes(768, 3072, 12)


def vit_l16_shapes() -> List[Tuple[int, ...]]:
    """vit_large_patch16_224: 296 tensors, 304 M parameters."""
    return vit_shapes(1024, 4096, 24)


def small_shapes(count: int = 2000) -> List[Tuple[int, ...]]:
    """``count`` small tensors of 64 to 4096 elements (a fixed sequence)."""
    return [(64 * (1 + (i * 37) % 64),) for i in range(count)]


SHAPE_SETS: Dict[str, Callable[[], List[Tuple[int, ...]]]] = {
    'resnet50': resnet50_shapes,
    'vit_b16': vit_b16_shapes,
    'vit_l16': vit_l16_shapes,
    'small2000': small_shapes,
}
DEFAULT_CASES = {'cpu': ['resnet50', 'vit_b16', 'small2000'], 'cuda': list(SHAPE_SETS)}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16}


def bytes_per_param(param_bytes: int, state_bytes: float) -> float:
    """What one step moves per parameter: param and grad read and param written,
    state read and written."""
    return 3 * param_bytes + 2 * state_bytes


def timm_lion():
    """timm's Lion class, or None. ``import timm`` needs torchvision, which has no CPU
    build on some machines; timm/optim/lion.py itself needs torch alone, so it is then
    loaded from the installed package without running timm's __init__."""
    spec = importlib.util.find_spec('timm')
    if spec is None:
        return None
    try:
        from timm.optim import Lion
        return Lion
    except ImportError:
        pass
    import types
    root = list(spec.submodule_search_locations)[0]
    for name, path in (('timm', root), ('timm.optim', osp.join(root, 'optim'))):
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules[name] = module
    return importlib.import_module('timm.optim.lion').Lion


def optimizer_factories(quick: bool, device: str) -> Dict[str, Tuple[str, Callable]]:
    """name -> (algorithm, factory(param_groups) -> optimizer)."""
    rows = cuda_rows() if device == 'cuda' else cpu_rows(quick)
    rows['torch AdamW fused'] = ('adamw', lambda g: torch.optim.AdamW(g, lr=1e-3, fused=True))
    rows['torch AdamW foreach'] = ('adamw',
                                   lambda g: torch.optim.AdamW(g, lr=1e-3, foreach=True))
    rows['torch SGD momentum fused'] = (
        'sgd', lambda g: torch.optim.SGD(g, lr=1e-3, momentum=0.9, fused=True))
    if importlib.util.find_spec('lion_pytorch') is not None:
        from lion_pytorch import Lion as LucidLion
        rows['lion-pytorch Lion'] = ('lion', lambda g: LucidLion(g, **LION_KW))
        if device == 'cuda':
            rows['lion-pytorch Lion, use_triton'] = (
                'lion', lambda g: LucidLion(g, use_triton=True, **LION_KW))
    else:
        print('note: lion-pytorch is not installed; its row is skipped')
    TimmLion = timm_lion()
    if TimmLion is not None:
        rows['timm Lion foreach'] = ('lion', lambda g: TimmLion(g, foreach=True, **LION_KW))
        rows['timm Lion for-loop'] = ('lion', lambda g: TimmLion(g, foreach=False, **LION_KW))
    else:
        print('note: timm is not installed; its rows are skipped')
    if device == 'cuda':
        rows.update(other_gpu_lions())
    return rows


LION_KW = dict(lr=1e-4, weight_decay=1e-2)


def cpu_rows(quick: bool) -> Dict[str, Tuple[str, Callable]]:
    from mmengine.optim import OptimWrapper

    from mmlion.ops import lion_cpu
    from mmlion.optim import GuardedOptimWrapper, Lion
    rows = {}
    if lion_cpu.available():
        rows['mmlion Lion (default)'] = ('lion', lambda g: Lion(g, **LION_KW))
        # The non-finite guard reads every gradient once more before the step.
        rows['mmlion Lion, skip_nonfinite'] = (
            'lion', lambda g: Lion(g, skip_nonfinite=True, **LION_KW))
        rows['mmlion Lion fused, bf16 state'] = (
            'lion', lambda g: Lion(g, fused=True, state_dtype=torch.bfloat16, **LION_KW))
        # The guard as MMEngine users run it: clipping's total norm is reused, so the
        # guarded row should cost what the unguarded one does (max_norm never scales).
        clip = dict(max_norm=1e9)
        rows['OptimWrapper(Lion), clip_grad'] = (
            'lion', lambda g: OptimWrapper(Lion(g, **LION_KW), clip_grad=clip))
        rows['GuardedOptimWrapper(Lion), clip_grad'] = (
            'lion', lambda g: GuardedOptimWrapper(Lion(g, **LION_KW), clip_grad=clip))
        rows['GuardedOptimWrapper(Lion), no clipping'] = (
            'lion', lambda g: GuardedOptimWrapper(Lion(g, **LION_KW)))
    else:
        print(f'note: mmlion fused kernel not built ({lion_cpu.load_error()})')
    if not quick:
        rows['mmlion Lion foreach'] = ('lion', lambda g: Lion(g, foreach=True, **LION_KW))
        rows['mmlion Lion for-loop'] = (
            'lion', lambda g: Lion(g, foreach=False, fused=False, **LION_KW))
    return rows


class ScaledStep:
    """A step through torch's GradScaler, as AMP training takes it. The scale is 1 and
    never grows, so the shared gradients stay as they are from round to round."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.scaler = torch.amp.GradScaler('cuda', init_scale=1.0, growth_interval=10**9)

    def step(self):
        self.scaler.step(self.optimizer)
        self.scaler.update()


def cuda_rows() -> Dict[str, Tuple[str, Callable]]:
    from mmlion.optim import Lion
    from mmlion.ops import lion_triton
    rows = {'mmlion Lion (default)': ('lion', lambda g: Lion(g, **LION_KW))}
    if lion_triton.available():
        rows['mmlion Lion fused'] = ('lion', lambda g: Lion(g, fused=True, **LION_KW))
        rows['mmlion Lion fused, skip_nonfinite'] = (
            'lion', lambda g: Lion(g, fused=True, skip_nonfinite=True, **LION_KW))
        rows['mmlion Lion fused, bf16 state'] = (
            'lion', lambda g: Lion(g, fused=True, state_dtype=torch.bfloat16, **LION_KW))
        rows['mmlion Lion fused, GradScaler'] = (
            'lion', lambda g: ScaledStep(Lion(g, fused=True, **LION_KW)))
    else:
        print(f'note: Triton is not available ({lion_triton.load_error()})')
    rows['mmlion Lion foreach'] = ('lion', lambda g: Lion(g, foreach=True, **LION_KW))
    rows['mmlion Lion for-loop'] = (
        'lion', lambda g: Lion(g, foreach=False, fused=False, **LION_KW))
    rows['torch AdamW fused, GradScaler'] = (
        'adamw', lambda g: ScaledStep(torch.optim.AdamW(g, lr=1e-3, fused=True)))
    return rows


def other_gpu_lions() -> Dict[str, Tuple[str, Callable]]:
    """bitsandbytes' and DeepSpeed's Lion, where they import."""
    rows = {}
    try:
        import bitsandbytes
        rows['bitsandbytes Lion'] = (
            'lion', lambda g: bitsandbytes.optim.Lion(g, **LION_KW))
    except Exception as error:  # absent, or built for another CUDA
        print(f'note: bitsandbytes Lion skipped ({type(error).__name__}: {error})')
    try:
        from deepspeed.ops.lion import FusedLion
        rows['DeepSpeed FusedLion'] = ('lion', lambda g: FusedLion(g, **LION_KW))
    except Exception as error:
        print(f'note: DeepSpeed FusedLion skipped ({type(error).__name__}: {error})')
    return rows


class Timer:
    """Times calls: the wall clock on the CPU; on a GPU, CUDA events around each call,
    read after the round (:meth:`collect`), so timing adds no sync inside it."""

    def __init__(self, device: str):
        self.cuda = device == 'cuda'
        self.pending: List[Tuple[List[float], object, object]] = []

    def time(self, fn: Callable[[], object], into: List[float]) -> None:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                enable_timing=True)
            start.record()
            fn()
            end.record()
            self.pending.append((into, start, end))
        else:
            start = time.perf_counter()
            fn()
            into.append(time.perf_counter() - start)

    def collect(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            for into, start, end in self.pending:
                into.append(start.elapsed_time(end) / 1e3)
            self.pending.clear()


class BandwidthProbe:
    """Times a memory-bound operation on two 256 MiB fp32 buffers in each round.

    On the CPU it is ``a += b``: it reads two arrays and writes one back into lines it
    has just read, the traffic pattern of an optimizer step; as STREAM does, each round
    keeps the best of a few back-to-back calls, which makes the limit high and the
    fractions below it conservative. On a GPU it is a device-to-device copy (bytes read
    plus written). Timed in the same rounds as the optimizers, so the limit and the
    steps see the same machine.
    """

    def __init__(self, numel: int = 1 << 26, device: str = 'cpu'):
        self.a = torch.ones(numel, device=device)
        self.b = torch.full((numel,), 1e-9, device=device)
        self.copy = device == 'cuda'
        self.bytes = (2 if self.copy else 3) * 4 * numel
        self.times: List[float] = []

    def step(self, timer: Timer, repeats: int = 3) -> None:
        times: List[float] = []
        operation = (lambda: self.a.copy_(self.b)) if self.copy else (lambda: self.a.add_(self.b))
        for _ in range(repeats):
            timer.time(operation, times)
        timer.collect()
        self.times.append(min(times))

    def bandwidth(self) -> float:
        return self.bytes / statistics.median(self.times)


def state_bytes(optimizer) -> int:
    total = 0
    optimizer = getattr(optimizer, 'optimizer', optimizer)  # an OptimWrapper's optimizer
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value) and value.numel() > 1:
                total += value.numel() * value.element_size()
    return total


def run_case(shapes, per_param: bool, factories, steps: int, warmup: int,
             probe: BandwidthProbe, device: str = 'cpu',
             dtype: torch.dtype = torch.float32) -> Tuple[List[dict], float]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter((torch.randn(s, generator=gen) * 0.02).to(device, dtype))
              for s in shapes]
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen) * 1e-3).to(device, dtype)
    numel = sum(p.numel() for p in params)
    # A fresh list of group dicts for each optimizer: torch fills defaults into them.
    optimizers = {
        name: factory([{'params': [p]} for p in params] if per_param else [{'params': params}])
        for name, (_, factory) in factories.items()}
    for _ in range(warmup):
        for optimizer in optimizers.values():
            optimizer.step()
    timer = Timer(device)
    times: Dict[str, List[float]] = {name: [] for name in optimizers}
    probe.times.clear()
    for _ in range(steps):
        probe.step(timer)
        for name, optimizer in optimizers.items():
            timer.time(optimizer.step, times[name])
        timer.collect()
    rows = []
    for name, optimizer in optimizers.items():
        rows.append(dict(name=name, algorithm=factories[name][0], numel=numel,
                         param_bytes=params[0].element_size(),
                         ms=1e3 * statistics.median(times[name]),
                         state_bytes_per_param=state_bytes(optimizer) / numel))
    return rows, probe.bandwidth()


def print_table(title: str, rows: List[dict], bandwidth: float,
                probe_name: str = 'a += b') -> None:
    ref = {r['name']: r['ms'] for r in rows}
    adamw = ref.get('torch AdamW fused')
    lucid = ref.get('lion-pytorch Lion')
    print(f'\n### {title}\n')
    print(f'memory bandwidth ({probe_name}, fp32, best of 3 per round, median over the same '
          f'rounds): {bandwidth / 1e9:.1f} GB/s\n')
    print('| optimizer | ms/step | vs AdamW fused | vs lion-pytorch | % of bandwidth limit '
          '| state bytes/param |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    for r in rows:
        moved = bytes_per_param(r['param_bytes'], r['state_bytes_per_param'])
        limit_ms = 1e3 * moved * r['numel'] / bandwidth
        vs_adamw = f"{r['ms'] / adamw:.2f}x" if adamw else '-'
        vs_lucid = f"{r['ms'] / lucid:.2f}x" if lucid else '-'
        print(f"| {r['name']} | {r['ms']:.2f} | {vs_adamw} | {vs_lucid} | "
              f"{100 * limit_ms / r['ms']:.0f}% | {r['state_bytes_per_param']:.2f} |")


# (row, the row it is measured against, what the ratio says): printed under each table.
RATIOS = [
    ('mmlion Lion fused, bf16 state', 'mmlion Lion (default)', 'bf16 state / fp32 state'),
    ('mmlion Lion fused', 'torch AdamW fused', 'Lion fused / AdamW fused'),
    ('mmlion Lion fused, skip_nonfinite', 'mmlion Lion fused', 'guard on the GPU / no guard'),
    ('mmlion Lion fused, GradScaler', 'torch AdamW fused, GradScaler',
     'Lion fused / AdamW fused, both under GradScaler'),
    ('mmlion Lion, skip_nonfinite', 'mmlion Lion (default)', 'guard in Lion / no guard'),
    ('GuardedOptimWrapper(Lion), clip_grad', 'OptimWrapper(Lion), clip_grad',
     'guard with clipping / clipping alone'),
    ('GuardedOptimWrapper(Lion), no clipping', 'mmlion Lion (default)',
     'guard without clipping / no guard'),
]


def print_ratios(rows: List[dict]) -> Dict[str, float]:
    ms = {r['name']: r['ms'] for r in rows}
    found = {label: ms[row] / ms[base] for row, base, label in RATIOS
             if row in ms and base in ms}
    if found:
        print('\n' + ', '.join(f'{label}: {ratio:.2f}x' for label, ratio in found.items()))
    return found


def plot(results: Dict[str, List[dict]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cases = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.5 + 0.45 * len(results[cases[0]]) *
                                             max(1, len(cases) / 2)))
    names = [r['name'] for r in results[cases[0]]]
    height = 0.8 / len(cases)
    for i, case in enumerate(cases):
        ms = {r['name']: r['ms'] for r in results[case]}
        ys = [j + i * height for j in range(len(names))]
        axes[0].barh(ys, [ms.get(n, 0) for n in names], height=height, label=case)
    axes[0].set_yticks([j + 0.4 - height / 2 for j in range(len(names))], names)
    axes[0].invert_yaxis()
    axes[0].set_xlabel('ms per step (median)')
    axes[0].legend(fontsize=7)
    first = {r['name']: r['state_bytes_per_param'] for r in results[cases[0]]}
    axes[1].barh(names, [first[n] for n in names])
    axes[1].invert_yaxis()
    axes[1].set_xlabel('optimizer state, bytes per parameter')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f'\nwrote {path}')


# -- --host-overhead: the fused GPU step's host work, measured on the CPU --------------
class _NoLaunch:
    """Stands for a Triton kernel: ``kernel[grid](...)`` does nothing."""

    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


def layer_decayed_lrs(n: int, buckets: int, decay: float = 0.9) -> List[float]:
    """``n`` learning rates in ``buckets`` runs of equal ones: the last run has
    ``LION_KW``'s lr, each earlier one ``decay`` times the next (layer-wise lr decay)."""
    return [LION_KW['lr'] * decay ** (buckets - 1 - i * buckets // n) for i in range(n)]


def host_overhead(cases: List[str], steps: int, warmup: int,
                  buckets: int = 1) -> Dict[str, float]:
    """Median host milliseconds of one ``Lion(fused=True).step()`` per case, one group
    per parameter (their learning rates in ``buckets`` runs of equal ones, earlier
    layers' smaller), with CPU tensors taking the CUDA path and no launch. Each step gets
    new gradient Tensors on the same storage, as ``zero_grad(set_to_none=True)`` and a
    backward that the caching allocator serves from the same blocks do."""
    import types
    from unittest import mock

    from mmlion.ops import lion_triton
    from mmlion.ops.loader import TRITON
    from mmlion.optim import Lion
    stub = types.SimpleNamespace(lion_kernel=_NoLaunch(), agree_kernel=_NoLaunch())
    medians: Dict[str, float] = {}
    with mock.patch.object(lion_triton, 'DEVICE_TYPES', {'cuda', 'cpu'}), \
            mock.patch.object(TRITON, 'get', lambda: stub):
        for case in cases:
            shapes = SHAPE_SETS[case]()
            params = [torch.nn.Parameter(torch.empty(shape)) for shape in shapes]
            grads = [torch.empty(shape) for shape in shapes]
            lrs = layer_decayed_lrs(len(params), buckets)
            lion = Lion([{'params': [p], 'lr': lr} for p, lr in zip(params, lrs)], fused=True,
                        **LION_KW)
            ones = [torch.nn.Parameter(torch.zeros(1)) for _ in shapes]
            adamw = torch.optim.AdamW([{'params': [p]} for p in ones], lr=1e-3, fused=True)
            times = {'lion': [], 'adamw': []}
            for step in range(warmup + steps):
                for name, optimizer, ps, gs in (('lion', lion, params, grads),
                                                ('adamw', adamw, ones, None)):
                    for i, p in enumerate(ps):
                        p.grad = gs[i].view(gs[i].shape) if gs else torch.zeros(1)
                    start = time.perf_counter()
                    optimizer.step()
                    if step >= warmup:
                        times[name].append((time.perf_counter() - start) * 1e3)
            medians[case] = statistics.median(times['lion'])
            print(f'{case}: {len(shapes)} groups of one tensor, {buckets} lr bucket(s): mmlion '
                  f'Lion fused (CUDA host path, no launch) {medians[case]:.3f} ms; torch AdamW '
                  f'fused on the CPU, one-element tensors '
                  f'{statistics.median(times["adamw"]):.3f} ms')
    print('host overhead: ' + ', '.join(f'{c} {ms:.3f} ms' for c, ms in medians.items()))
    return medians


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--dtype', choices=list(DTYPES), default='fp32',
                        help='parameter and gradient dtype')
    parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
    parser.add_argument('--steps', type=int, default=20, help='timed steps per optimizer')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    parser.add_argument('--cases', nargs='+', choices=list(SHAPE_SETS),
                        help='parameter sets to time (default: all but vit_l16 on the CPU)')
    parser.add_argument('--quick', action='store_true',
                        help='few steps, small sets, fewer rows: a smoke test')
    parser.add_argument('--plot', help='write a bar chart (PNG) here')
    parser.add_argument('--json', help='write the raw results (JSON) here')
    parser.add_argument('--host-overhead', action='store_true',
                        help="time the fused GPU step's host code alone, on the CPU (above)")
    parser.add_argument('--buckets', type=int, default=1,
                        help='with --host-overhead: this many different learning rates '
                             '(layer-wise lr decay), one launch each')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.host_overhead:
        return host_overhead(args.cases or list(SHAPE_SETS), args.steps, args.warmup,
                             args.buckets)
    if args.quick:
        args.steps, args.warmup = 3, 1
    args.cases = args.cases or DEFAULT_CASES[args.device]
    factories = optimizer_factories(args.quick, args.device)
    probe = BandwidthProbe(1 << 22 if args.quick else 1 << 26, args.device)
    where = (torch.cuda.get_device_name() if args.device == 'cuda'
             else f'{args.threads} threads')
    print(f'torch {torch.__version__}, {where}, {args.dtype} params, {args.steps} interleaved '
          f'rounds, medians')
    results: Dict[str, List[dict]] = {}
    bandwidths: Dict[str, float] = {}
    for case in args.cases:
        shapes = SHAPE_SETS[case]()
        if args.quick:
            shapes = shapes[:40]
        numel = sum(torch.Size(s).numel() for s in shapes)
        for per_param in (False, True):
            if case.startswith('small') and not per_param:
                continue
            title = (f'{case}: {len(shapes)} tensors, {numel / 1e6:.2f} M params, '
                     f'{"one group per parameter" if per_param else "one group"}')
            rows, bandwidth = run_case(shapes, per_param, factories, args.steps,
                                       args.warmup, probe, args.device, DTYPES[args.dtype])
            print_table(title, rows, bandwidth,
                        'device-to-device copy' if args.device == 'cuda' else 'a += b')
            print_ratios(rows)
            sys.stdout.flush()
            results[title] = rows
            bandwidths[title] = bandwidth
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(bandwidths=bandwidths, results=results), f, indent=1)
    if args.plot:
        plot(results, args.plot)


if __name__ == '__main__':
    main()
