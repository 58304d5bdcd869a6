"""One rank of a torch FSDP2 (``fully_shard``) run with mmlion's Lion, started by
torchrun from tests/test_optim/test_fsdp2.py: a small model sharded over a CPU mesh,
trained a few steps on the same batch on every rank (so the averaged gradient is a
single process's), optionally with a NaN in one rank's shard at one step; then the
full state dict, saved by rank 0, and two round trips into a fresh model and
optimizer (the full state dict, and a sharded torch.distributed.checkpoint on disk)
that must take the next step exactly as the original does.

Usage: torchrun --nproc_per_node 2 tests/_fsdp2_worker.py OUT_DIR OPTION_SETS_JSON

OPTION_SETS_JSON is a list of Lion keyword sets (``nan_rank``: the rank whose
gradient shard gets the NaN); rank 0 writes ``OUT_DIR/result_<i>.pt`` for set i, or
the error a set raised.
"""
import json
import os.path as osp
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_state_dict,
                                                     set_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from mmlion.optim import Lion
from mmlion.cli import teardown_distributed

STEPS = 3
NAN_STEP = 1


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    # Sizes that do not divide by 2: uneven shards, and a bias of one element
    # (one rank's shard of it is empty).
    return torch.nn.Sequential(torch.nn.Linear(7, 33), torch.nn.ReLU(),
                               torch.nn.Linear(33, 1))


def batch(step: int) -> torch.Tensor:
    return torch.randn(5, 7, generator=torch.Generator().manual_seed(100 + step))


def shard(model, mesh):
    for layer in model:
        if any(True for _ in layer.parameters()):
            fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def train_step(model, optimizer, step, nan_rank=None):
    optimizer.zero_grad()
    model(batch(step)).square().mean().backward()
    if nan_rank == dist.get_rank():
        local = model[0].weight.grad.to_local()
        local.view(-1)[0] = float('nan')
    optimizer.step()


def plain(value):
    """Full state dicts hold replicated DTensors: plain tensors, to save."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(item) for item in value)
    return value.full_tensor() if isinstance(value, DTensor) else value


def run(out_path: str, mesh, options: dict) -> None:
    nan_rank = options.pop('nan_rank', None)
    model = shard(make_model(), mesh)
    optimizer = Lion(model.parameters(), lr=1e-2, weight_decay=0.1, **options)
    for step in range(STEPS):
        train_step(model, optimizer, step, nan_rank if step == NAN_STEP else None)
    full = StateDictOptions(full_state_dict=True)  # gathered on every rank
    model_state, optim_state = get_state_dict(model, optimizer, options=full)

    # The round trip: a fresh sharded model and optimizer loaded from the full state
    # take the next step exactly as the original.
    twin = shard(make_model(), mesh)
    twin_optimizer = Lion(twin.parameters(), lr=1e-2, weight_decay=0.1, **options)
    set_state_dict(twin, twin_optimizer, model_state_dict=model_state,
                   optim_state_dict=optim_state,
                   options=full)
    # And through a sharded torch.distributed.checkpoint on disk.
    checkpoint = osp.join(osp.dirname(out_path), osp.basename(out_path)[:-3] + '_dcp')
    model_shards, optim_shards = get_state_dict(model, optimizer)
    dcp.save(dict(model=model_shards, optim=optim_shards), checkpoint_id=checkpoint)
    restored = shard(make_model(), mesh)
    restored_optimizer = Lion(restored.parameters(), lr=1e-2, weight_decay=0.1, **options)
    into = dict(zip(('model', 'optim'), get_state_dict(restored, restored_optimizer)))
    dcp.load(into, checkpoint_id=checkpoint)
    set_state_dict(restored, restored_optimizer, model_state_dict=into['model'],
                   optim_state_dict=into['optim'])
    for net, opt in ((model, optimizer), (twin, twin_optimizer),
                     (restored, restored_optimizer)):
        train_step(net, opt, STEPS)
    after = get_state_dict(model, optimizer, options=full)[0]
    twin_after = get_state_dict(twin, twin_optimizer, options=full)[0]
    restored_after = get_state_dict(restored, restored_optimizer, options=full)[0]
    # full_tensor() is a collective: every rank gathers, rank 0 saves.
    result = plain(dict(model=model_state, optimizer=optim_state, after=after,
                        twin_after=twin_after, restored_after=restored_after,
                        skipped=optimizer.nonfinite_guard.skipped))
    if dist.get_rank() == 0:
        torch.save(result, out_path)


def main(out_dir: str, option_sets: list) -> None:
    dist.init_process_group('gloo')
    mesh = init_device_mesh('cpu', (dist.get_world_size(),))
    for index, options in enumerate(option_sets):
        out_path = osp.join(out_dir, f'result_{index}.pt')
        try:
            run(out_path, mesh, options)
        except ValueError as error:  # a refusal, the same on every rank
            if dist.get_rank() == 0:
                torch.save(dict(error=str(error)), out_path)
    teardown_distributed()  # a barrier first: else a rank can abort at exit


if __name__ == '__main__':
    main(sys.argv[1], json.loads(sys.argv[2]))
