"""Fixtures shared by the test modules."""
import os

import pytest
import torch

# Without a GPU, Triton kernels run on CPU tensors in Triton's interpreter; it must be
# chosen before triton is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

from helpers import free_port, generate_shapes, load, train, write_config


@pytest.fixture(scope='session')
def shapes_data():
    """The Shapes dataset the demo configs read from data/shapes/ (relative to the
    repository root, where the tests run), generated as tools/run_main.sh does:
    once, and a no-op when mmlion's intact copy is there."""
    return generate_shapes()


@pytest.fixture(scope='module')
def single_process_group():
    """A real gloo process group of one process (ZeRO, DTensor meshes, the guard's
    all-reduce), for tests that need torch.distributed without subprocesses; torn down
    after the module, so that no other test runs inside a process group."""
    import torch.distributed as dist
    created = not dist.is_initialized()
    if created:
        dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}',
                                rank=0, world_size=1)
    yield dist.group.WORLD
    if created:
        dist.destroy_process_group()


@pytest.fixture
def triton_device(monkeypatch):
    """Where mmlion's Triton kernels run in this session: the GPU when there is one,
    else CPU tensors in Triton's interpreter (``fused=True`` then takes CPU tensors
    to the Triton kernel instead of the C++ one)."""
    from mmlion.ops import lion_triton
    if not lion_triton.available():  # no Triton, or one older than the kernel needs
        pytest.skip(lion_triton.load_error())
    if torch.cuda.is_available():
        return torch.device('cuda')
    assert os.environ.get('TRITON_INTERPRET') == '1'
    monkeypatch.setattr(lion_triton, 'DEVICE_TYPES', {'cuda', 'cpu'})
    return torch.device('cpu')


@pytest.fixture(scope='session')
def ddp_straight(tmp_path_factory):
    """An uninterrupted two-process DDP run of the toy config: its final checkpoint."""
    tmp_path = tmp_path_factory.mktemp('ddp')
    train(write_config(tmp_path, 'ddp', nproc=2), tmp_path / 'ddp_straight', nproc=2,
          port=free_port())
    return load(tmp_path / 'ddp_straight' / 'epoch_3.pth')
