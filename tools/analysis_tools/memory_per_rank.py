"""Measure, per rank, the bytes per parameter that each way of scaling out keeps:
parameters, gradients and Lion's optimizer state, for the same model, after one step.

Run under torchrun; rank 0 prints a Markdown table::

    python -m torch.distributed.run --nproc_per_node 2 \\
        tools/analysis_tools/memory_per_rank.py --model vit_b16

Engines: DDP (every rank holds everything), mmlion's ZeroRedundancyOptimizer (the
optimizer state sharded) and torch FSDP2 ``fully_shard`` (parameters, gradients and
state sharded). The model is a stack of tensors of the chosen shapes (those of the step
benchmark), so no model code or weights are needed.
"""
import argparse
import os.path as osp
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_optimizers import SHAPE_SETS  # noqa: E402

from mmlion.utils import teardown_distributed  # noqa: E402


class Block(torch.nn.Module):
    """One tensor, used in its own forward (where FSDP2 gathers it)."""

    def __init__(self, shape):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(shape) * 0.02)

    def forward(self):
        return self.weight.square().mean()


class Stack(torch.nn.Module):
    """One submodule per tensor, so FSDP2 can shard each."""

    def __init__(self, shapes):
        super().__init__()
        self.blocks = torch.nn.ModuleList(Block(shape) for shape in shapes)

    def forward(self):
        return sum(block() for block in self.blocks)


def local_bytes(tensors) -> int:
    total = 0
    for t in tensors:
        t = t.to_local() if hasattr(t, 'to_local') else t
        total += t.numel() * t.element_size()
    return total


def state_tensors(optimizer):
    inner = getattr(optimizer, 'optim', optimizer)  # torch's ZeRO keeps its shard's optimizer
    return [v for state in inner.state.values() for v in state.values() if torch.is_tensor(v)]


def measure(engine: str, shapes, state_dtype):
    from mmlion.optim import Lion, ZeroRedundancyOptimizer
    model = Stack(shapes)
    numel = sum(p.numel() for p in model.parameters())
    kwargs = dict(lr=1e-4, weight_decay=0.1, state_dtype=state_dtype)
    if engine == 'DDP':
        model = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = Lion(model.parameters(), **kwargs)
    elif engine == 'mmlion ZeRO':
        model = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_type='Lion', **kwargs)
    else:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh('cpu', (dist.get_world_size(),))
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        optimizer = Lion(model.parameters(), **kwargs)
    model().backward()
    optimizer.step()
    params = list(model.parameters())
    return dict(engine=engine,
                params=local_bytes(params) / numel,
                grads=local_bytes([p.grad for p in params if p.grad is not None]) / numel,
                state=local_bytes(state_tensors(optimizer)) / numel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', choices=list(SHAPE_SETS), default='resnet50')
    parser.add_argument('--state-dtype', choices=['float32', 'bfloat16'], default='float32')
    args = parser.parse_args()
    dist.init_process_group('gloo')
    shapes = SHAPE_SETS[args.model]()
    state_dtype = getattr(torch, args.state_dtype)
    rows = [measure(engine, shapes, state_dtype)
            for engine in ('DDP', 'mmlion ZeRO', 'FSDP2 fully_shard')]
    every_rank = [None] * dist.get_world_size()
    dist.all_gather_object(every_rank, rows)
    if dist.get_rank() == 0:
        n = dist.get_world_size()
        numel = sum(torch.Size(s).numel() for s in shapes)
        print(f'{args.model}: {numel / 1e6:.1f} M parameters, {n} ranks, fp32 parameters, '
              f'{args.state_dtype} Lion state; bytes per parameter held by the fullest rank\n')
        print('| engine | parameters | gradients | Lion state | total |')
        print('| --- | ---: | ---: | ---: | ---: |')
        for i, row in enumerate(rows):
            most = {key: max(rank_rows[i][key] for rank_rows in every_rank)
                    for key in ('params', 'grads', 'state')}
            print(f"| {row['engine']} | {most['params']:.2f} | {most['grads']:.2f} | "
                  f"{most['state']:.2f} | {sum(most.values()):.2f} |")
    teardown_distributed()  # a barrier first: else a rank can abort at exit


if __name__ == '__main__':
    main()
