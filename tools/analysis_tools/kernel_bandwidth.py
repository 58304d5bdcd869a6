"""The fused Lion kernel's own bandwidth on a GPU: back-to-back launches over a few large
tensors (the host plan reused, so the host adds nothing), timed with CUDA events,
against a device-to-device copy of as many bytes in the same process. A step moves 3x
the param bytes (param and grad read, param written) and 2x the state bytes.

Example (on a machine with a CUDA GPU)::

    python tools/analysis_tools/kernel_bandwidth.py --json kernel_bandwidth.json
"""
import argparse
import json
import statistics
from typing import Dict, List

import torch

DTYPES = {'fp32': (torch.float32, torch.float32), 'bf16': (torch.bfloat16, torch.bfloat16),
          'fp32 params, bf16 state': (torch.float32, torch.bfloat16)}


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs, each between two CUDA events."""
    times: List[float] = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def probe(numel: int, tensors: int, repeats: int) -> List[Dict[str, object]]:
    from mmlion.ops import lion_triton
    rows = []
    source = torch.empty(numel * tensors * 10, dtype=torch.uint8, device="cuda")  # >= moved / 2
    target = torch.empty_like(source)
    for name, (param_dtype, state_dtype) in DTYPES.items():
        params = [torch.randn(numel, device='cuda', dtype=param_dtype) for _ in range(tensors)]
        grads = [torch.randn_like(p) for p in params]
        exp_avgs = [torch.zeros(numel, device='cuda', dtype=state_dtype) for _ in params]
        plan: dict = {}

        def step():
            lion_triton.fused_lion_(params, grads, exp_avgs, lr=1e-4, beta1=0.9, beta2=0.99,
                                    weight_decay=0.01, initial_lr=None, maximize=False,
                                    cautious=False, host_plan=plan)
        step()  # compiles, builds the plan
        moved = tensors * numel * (3 * params[0].element_size() + 2 * exp_avgs[0].element_size())
        copy_bytes = source[:moved // 2]
        seconds = timed(lambda: [step() for _ in range(10)], repeats) / 10
        copy_seconds = timed(lambda: [target[:copy_bytes.numel()].copy_(copy_bytes)
                                      for _ in range(10)], repeats) / 10
        rows.append(dict(dtypes=name, gb_moved=moved / 1e9, kernel_ms=seconds * 1e3,
                         kernel_tb_s=moved / seconds / 1e12,
                         copy_tb_s=moved / copy_seconds / 1e12,
                         of_copy=copy_seconds / seconds))
        for memory in (params, grads, exp_avgs):  # freed before the next dtype pair's
            memory.clear()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--numel', type=int, default=1 << 26, help='elements per tensor')
    parser.add_argument('--tensors', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--json', help='write the rows here')
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit('kernel_bandwidth.py needs a CUDA GPU')
    rows = probe(args.numel, args.tensors, args.repeats)
    print(f'{torch.cuda.get_device_name()}, {args.tensors} tensors of {args.numel} elements, '
          f'medians of {args.repeats} x 10 back-to-back launches\n')
    print('| dtypes | GB moved | kernel ms | kernel TB/s | copy TB/s | of copy |')
    print('| --- | ---: | ---: | ---: | ---: | ---: |')
    for r in rows:
        print(f"| {r['dtypes']} | {r['gb_moved']:.2f} | {r['kernel_ms']:.3f} | "
              f"{r['kernel_tb_s']:.2f} | {r['copy_tb_s']:.2f} | {r['of_copy']:.0%} |")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
