"""Measure, per rank, the bytes per parameter that each way of scaling out keeps:
parameters, gradients and Lion's optimizer state, for the same model, after one step.

Run under torchrun; rank 0 prints a Markdown table::

    python -m torch.distributed.run --nproc_per_node 2 \\
        tools/analysis_tools/memory_per_rank.py --model vit_b16

Engines: DDP (every rank holds everything), mmlion's ZeroRedundancyOptimizer (the
optimizer state sharded), torch FSDP2 ``fully_shard`` and FSDP1 (what MMEngine's
``FSDPStrategy`` wraps; parameters, gradients and state sharded), and DeepSpeed ZeRO-1
and ZeRO-2 (what MMEngine's ``DeepSpeedStrategy`` runs, Lion as its client optimizer:
gradients and state sharded, plus an fp32 master copy of each rank's partition). The
model is a stack of tensors of the chosen shapes (those of the step benchmark), so no
model code or weights are needed. Gradients are counted after the backward pass (where
DeepSpeed has reduced them into its partitions), the rest after the step; transient
communication buckets are not counted.
"""
import argparse
import importlib.util
import os
import os.path as osp

import torch
import torch.distributed as dist

from mmlion.cli import teardown_distributed


def _benchmark_shape_sets() -> dict:
    """The step benchmark's parameter sets, read from its file (tools/ is no package)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'benchmark_optimizers.py')
    spec = importlib.util.spec_from_file_location('benchmark_optimizers', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SHAPE_SETS


SHAPE_SETS = _benchmark_shape_sets()


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


ENGINES = ('DDP', 'mmlion ZeRO', 'FSDP2 fully_shard', 'FSDP1 (MMEngine FSDPStrategy)',
           'DeepSpeed ZeRO-1', 'DeepSpeed ZeRO-2')


def wrap(engine: str, model, optimizer_kwargs):
    """The model as the engine runs it, and the optimizer that steps it."""
    from mmlion.optim import Lion, ZeroRedundancyOptimizer
    if engine == 'DDP':
        model = torch.nn.parallel.DistributedDataParallel(model)
        return model, Lion(model.parameters(), **optimizer_kwargs)
    if engine == 'mmlion ZeRO':
        model = torch.nn.parallel.DistributedDataParallel(model)
        return model, ZeroRedundancyOptimizer(model.parameters(), optimizer_type='Lion',
                                              **optimizer_kwargs)
    if engine == 'FSDP2 fully_shard':
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh('cpu', (dist.get_world_size(),))
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model, Lion(model.parameters(), **optimizer_kwargs)
    if engine.startswith('FSDP1'):
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy
        model = FullyShardedDataParallel(model, device_id=torch.device('cpu'),
                                         use_orig_params=True,
                                         auto_wrap_policy=ModuleWrapPolicy({Block}))
        return model, Lion(model.parameters(), **optimizer_kwargs)
    import deepspeed
    model, optimizer, _, _ = deepspeed.initialize(
        model=model, optimizer=Lion(model.parameters(), **optimizer_kwargs),
        config=dict(train_micro_batch_size_per_gpu=1, gradient_clipping=0.0,
                    zero_allow_untested_optimizer=True,
                    zero_optimization=dict(stage=int(engine[-1]))))
    return model, optimizer


def gradients(model, optimizer):
    """The gradients each rank holds after the backward pass."""
    partitions = getattr(optimizer, 'averaged_gradients', None)  # DeepSpeed ZeRO
    if partitions is None:
        return [p.grad for p in model.parameters() if p.grad is not None]
    lists = partitions.values() if isinstance(partitions, dict) else partitions
    return [t for tensors in lists if tensors is not None for t in tensors if t is not None]


def measure(engine: str, shapes, state_dtype):
    model = Stack(shapes)
    numel = sum(p.numel() for p in model.parameters())
    model, optimizer = wrap(engine, model, dict(lr=1e-4, weight_decay=0.1,
                                                state_dtype=state_dtype))
    loss = model()
    if hasattr(model, 'backward'):  # DeepSpeed's engine
        model.backward(loss)
    else:
        loss.backward()
    grads = local_bytes(gradients(model, optimizer)) / numel
    optimizer.step()
    client = getattr(optimizer, 'optimizer', optimizer)  # DeepSpeed's wraps Lion
    master = getattr(optimizer, 'single_partition_of_fp32_groups', [])
    return dict(engine=engine,
                params=local_bytes(model.parameters()) / numel,
                master=local_bytes(master) / numel,
                grads=grads,
                state=local_bytes(state_tensors(client)) / numel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', choices=list(SHAPE_SETS), default='resnet50')
    parser.add_argument('--state-dtype', choices=['float32', 'bfloat16'], default='float32')
    args = parser.parse_args()
    os.environ.setdefault('DS_ACCELERATOR', 'cpu' if not torch.cuda.is_available() else 'cuda')
    dist.init_process_group('gloo')
    shapes = SHAPE_SETS[args.model]()
    state_dtype = getattr(torch, args.state_dtype)
    rows = [measure(engine, shapes, state_dtype) for engine in ENGINES]
    every_rank = [None] * dist.get_world_size()
    dist.all_gather_object(every_rank, rows)
    if dist.get_rank() == 0:
        n = dist.get_world_size()
        numel = sum(torch.Size(s).numel() for s in shapes)
        print(f'{args.model}: {numel / 1e6:.1f} M parameters, {n} ranks, fp32 parameters, '
              f'{args.state_dtype} Lion state; bytes per parameter held by the fullest rank\n')
        print('| engine | parameters | fp32 master copy | gradients | Lion state | total |')
        print('| --- | ---: | ---: | ---: | ---: | ---: |')
        for i, row in enumerate(rows):
            most = {key: max(rank_rows[i][key] for rank_rows in every_rank)
                    for key in ('params', 'master', 'grads', 'state')}
            print(f"| {row['engine']} | {most['params']:.2f} | {most['master']:.2f} | "
                  f"{most['grads']:.2f} | {most['state']:.2f} | {sum(most.values()):.2f} |")
    teardown_distributed()  # a barrier first: else a rank can abort at exit


if __name__ == '__main__':
    main()
